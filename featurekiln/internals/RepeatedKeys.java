// How many rows of each task may repeat a (run, key) pair, as a Spark aggregate over two longs that stand
// for the row's partition value (its run) and its other key columns: the value itself where it is one
// integral or date column, else a 64-bit hash.
//
// The quality gate observes it (Dataset.observe) on the rows a run writes, which each write task sorts by
// ds (Spark's writer sorts them so anyway): a task sees each day's rows in one run. Within a run the
// aggregate keeps the keys it has seen in a hash set; a row counts when its key is in the set already,
// when its run value is one the task has left before (the runs were not contiguous: it counts one and
// gives up), or when either long is null (a null ds or key column). When the count is 0, no (ds, keys) repeats inside a task, and with one file
// per day (Delta's statistics of the written files say so) none repeats at all, so the gate decides the
// compound-uniqueness check without a scan of the written rows (featurekiln/quality/proofs_observed.py). Hash collisions
// only ever add to the count: a 0 is a proof, a count only a reason to scan. Memory is one day's keys of
// a task; past MAX_KEYS the aggregate gives up (counts one) rather than grow. Partial counts add up; each
// buffer proves only the rows it saw (observed, that is a whole task's; in a group-by whose buffers spill
// and merge, a group's rows of one task may be split over buffers, so use it where it is observed).
// featurekiln/internals/jars.py compiles it; without it the gate scans.
package featurekiln;

import java.io.Serializable;
import java.nio.ByteBuffer;
import java.util.Arrays;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.aggregate.TypedImperativeAggregate;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;

public class RepeatedKeys extends TypedImperativeAggregate<RepeatedKeys.State> implements Serializable {
  // Keys of one run held at most (in a table of at most twice as many longs, 64 MiB); past it the
  // aggregate gives up.
  static final int MAX_KEYS = 1 << 22;

  private final Expression run;
  private final Expression key;
  private final int maxKeys;
  private final int mutableOffset;
  private final int inputOffset;

  public RepeatedKeys(Expression run, Expression key) {
    this(run, key, MAX_KEYS);
  }

  /** With another cap on the keys held (tests). */
  public RepeatedKeys(Expression run, Expression key, int maxKeys) {
    this(run, key, maxKeys, 0, 0);
  }

  private RepeatedKeys(Expression run, Expression key, int maxKeys, int mutableOffset, int inputOffset) {
    this.run = run;
    this.key = key;
    this.maxKeys = maxKeys;
    this.mutableOffset = mutableOffset;
    this.inputOffset = inputOffset;
  }

  /** The count so far, and while rows go by, the current run, its keys and the runs left behind. */
  public static final class State {
    long repeated;
    boolean inRun;
    long current;
    boolean gaveUp;
    final LongSet keys = new LongSet();
    final LongSet left = new LongSet();

    State(long repeated) {
      this.repeated = repeated;
    }
  }

  /** A set of longs: open addressing, Fibonacci hashing, linear probing; 0 is kept apart (it marks an empty slot). */
  static final class LongSet {
    private int bits = 10;
    private long[] slots = new long[1 << bits];
    private int size;
    private boolean hasZero;

    // The slot that holds value (not 0), or the empty slot where it goes.
    private int find(long value) {
      int mask = slots.length - 1;
      int i = (int) ((value * 0x9E3779B97F4A7C15L) >>> (64 - bits));
      while (slots[i] != 0 && slots[i] != value) {
        i = (i + 1) & mask;
      }
      return i;
    }

    int size() {
      return size + (hasZero ? 1 : 0);
    }

    /** Adds {@code value}; whether it was not there. */
    boolean add(long value) {
      if (value == 0) {
        boolean added = !hasZero;
        hasZero = true;
        return added;
      }
      int i = find(value);
      if (slots[i] == value) {
        return false;
      }
      slots[i] = value;
      if (++size * 2 > slots.length) {
        grow();
      }
      return true;
    }

    boolean contains(long value) {
      return value == 0 ? hasZero : slots[find(value)] == value;
    }

    /** Empties the set and gives back its memory. */
    void clear() {
      bits = 10;
      slots = new long[1 << bits];
      size = 0;
      hasZero = false;
    }

    private void grow() {
      long[] old = slots;
      slots = new long[old.length * 2];
      bits++;
      size = 0;
      for (long value : old) {
        if (value != 0) {
          add(value);
        }
      }
    }
  }

  @Override
  public State createAggregationBuffer() {
    return new State(0);
  }

  @Override
  public State update(State state, InternalRow input) {
    if (state.gaveUp) {
      return state;
    }
    Object runValue = run.eval(input);
    Object keyValue = key.eval(input);
    if (runValue == null || keyValue == null) {
      state.repeated++;
      return state;
    }
    long runHash = (Long) runValue;
    if (!state.inRun || runHash != state.current) {
      if (state.inRun) {
        state.left.add(state.current);
      }
      if (state.left.contains(runHash)) {
        state.repeated++;  // this run's rows came apart: its earlier keys are gone, so give up
        state.gaveUp = true;
        state.keys.clear();
        return state;
      }
      state.inRun = true;
      state.current = runHash;
      state.keys.clear();
    }
    if (state.keys.size() >= maxKeys) {
      state.repeated++;  // too many keys in one day of this task to hold: give up
      state.gaveUp = true;
      state.keys.clear();
    } else if (!state.keys.add((Long) keyValue)) {
      state.repeated++;
    }
    return state;
  }

  @Override
  public State merge(State state, State other) {
    state.repeated += other.repeated;
    return state;
  }

  @Override
  public Object eval(State state) {
    return state.repeated;
  }

  // Only the count travels: the keys of a task's runs concern that task alone.
  @Override
  public byte[] serialize(State state) {
    return ByteBuffer.allocate(Long.BYTES).putLong(state.repeated).array();
  }

  @Override
  public State deserialize(byte[] bytes) {
    return new State(ByteBuffer.wrap(bytes).getLong());
  }

  @Override
  public int mutableAggBufferOffset() {
    return mutableOffset;
  }

  @Override
  public int inputAggBufferOffset() {
    return inputOffset;
  }

  @Override
  public RepeatedKeys withNewMutableAggBufferOffset(int offset) {
    return new RepeatedKeys(run, key, maxKeys, offset, inputOffset);
  }

  @Override
  public RepeatedKeys withNewInputAggBufferOffset(int offset) {
    return new RepeatedKeys(run, key, maxKeys, mutableOffset, offset);
  }

  @Override
  public boolean nullable() {
    return false;
  }

  @Override
  public DataType dataType() {
    return DataTypes.LongType;
  }

  @Override
  public Seq<Expression> children() {
    return CollectionConverters.asScala(Arrays.asList(run, key)).toSeq();
  }

  @Override
  public Expression withNewChildrenInternal(IndexedSeq<Expression> children) {
    return new RepeatedKeys(children.apply(0), children.apply(1), maxKeys, mutableOffset, inputOffset);
  }

  @Override
  public int productArity() {
    return 5;
  }

  @Override
  public Object productElement(int n) {
    switch (n) {
      case 0:
        return run;
      case 1:
        return key;
      case 2:
        return maxKeys;
      case 3:
        return mutableOffset;
      default:
        return inputOffset;
    }
  }

  @Override
  public boolean canEqual(Object other) {
    return other instanceof RepeatedKeys;
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof RepeatedKeys)) {
      return false;
    }
    RepeatedKeys that = (RepeatedKeys) other;
    return run.equals(that.run) && key.equals(that.key) && maxKeys == that.maxKeys
        && mutableOffset == that.mutableOffset && inputOffset == that.inputOffset;
  }

  @Override
  public int hashCode() {
    return 31 * run.hashCode() + key.hashCode();
  }

  @Override
  public String prettyName() {
    return "repeated_keys";
  }
}
