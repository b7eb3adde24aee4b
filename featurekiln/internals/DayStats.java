// One feature's statistics per day, as a Spark aggregate over two values per row: the row's day (a long)
// and the feature's value (a double for a numeric feature; for any other type a 64-bit hash of it, null
// for a null value).
//
// The quality gate observes it (Dataset.observe) on the rows a run writes, which each write task sorts by
// ds (featurekiln/offline/delta_table.py one_file_per_day): a task sees each day's rows in one run, and
// with one file per day no other task sees that day. While a day's rows go by the aggregate keeps its
// non-null values; when the day ends (the next day begins, or the task's buffer is serialized) it sorts
// them once and keeps one record: rows, nulls (NaN counts as null), non-null values, and for a numeric
// feature min, max, mean, sample standard deviation (two passes over the values), p50 and p95 (the value
// of rank ceil(p * n), as percentile_approx defines it, exactly), and the distinct values (exact for
// numbers, by 64-bit hash otherwise). Memory is one day's values of a task; past MAX_VALUES the day's
// record says so (GAVE_UP) and keeps only its counts. A day whose rows came apart (a task left it and
// came back, or two buffers hold it) is marked SPLIT: its statistics cannot be merged, so the caller
// computes that day otherwise (featurekiln/quality/statistics.py). The result is the records in a
// binary format that statistics.py decodes. featurekiln/internals/jars.py compiles it; without it the
// statistics come from a Spark query over the written rows.
package featurekiln;

import java.io.Serializable;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.aggregate.TypedImperativeAggregate;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;

public class DayStats extends TypedImperativeAggregate<DayStats.State> implements Serializable {
  // Non-null values of one day of a task held at most (32 MiB); past it the day gives up its values.
  static final int MAX_VALUES = 1 << 22;
  static final int SPLIT = 1;
  static final int GAVE_UP = 2;
  static final int NUMERIC = 4;
  // day, flags, rows, nulls, values, min, max, mean, stddev, p50, p95, distinct
  static final int RECORD_BYTES = 8 + 4 + 8 * 3 + 8 * 6 + 8;

  private final Expression day;
  private final Expression value;
  private final int maxValues;
  private final int mutableOffset;
  private final int inputOffset;

  public DayStats(Expression day, Expression value) {
    this(day, value, MAX_VALUES);
  }

  /** With another cap on the values held (tests). */
  public DayStats(Expression day, Expression value, int maxValues) {
    this(day, value, maxValues, 0, 0);
  }

  private DayStats(Expression day, Expression value, int maxValues, int mutableOffset, int inputOffset) {
    this.day = day;
    this.value = value;
    this.maxValues = maxValues;
    this.mutableOffset = mutableOffset;
    this.inputOffset = inputOffset;
  }

  /** One day's statistics. */
  static final class Record {
    long day;
    int flags;
    long rows;
    long nulls;
    long count;
    double min = Double.NaN;
    double max = Double.NaN;
    double mean = Double.NaN;
    double stddev = Double.NaN;
    double p50 = Double.NaN;
    double p95 = Double.NaN;
    long distinct = -1;
  }

  /** The finished days, and while rows go by the current day, its values and the days left behind. */
  public static final class State {
    final TreeMap<Long, Record> days = new TreeMap<>();
    final HashSet<Long> left = new HashSet<>();
    Record current;
    double[] doubles = new double[0];
    long[] longs = new long[0];
    int size;
  }

  private boolean numeric() {
    return DataTypes.DoubleType.equals(value.dataType());
  }

  @Override
  public State createAggregationBuffer() {
    return new State();
  }

  @Override
  public State update(State state, InternalRow input) {
    Object dayValue = day.eval(input);
    if (dayValue == null) {
      return state;  // a row without a day belongs to no day's statistics (the gate checks ds for nulls)
    }
    long today = (Long) dayValue;
    if (state.current == null || state.current.day != today) {
      finish(state);
      Record record = new Record();
      record.day = today;
      if (state.left.contains(today) || state.days.containsKey(today)) {
        record.flags |= SPLIT;
      }
      state.current = record;
    }
    Record record = state.current;
    record.rows++;
    Object item = value.eval(input);
    if (item == null || (item instanceof Double && ((Double) item).isNaN())) {
      record.nulls++;
      return state;
    }
    if ((record.flags & GAVE_UP) != 0) {
      return state;
    }
    if (state.size >= maxValues) {
      record.flags |= GAVE_UP;
      state.doubles = new double[0];
      state.longs = new long[0];
      state.size = 0;
      return state;
    }
    if (numeric()) {
      if (state.size == state.doubles.length) {
        state.doubles = Arrays.copyOf(state.doubles, Math.max(1024, state.size * 2));
      }
      state.doubles[state.size++] = (Double) item;
    } else {
      if (state.size == state.longs.length) {
        state.longs = Arrays.copyOf(state.longs, Math.max(1024, state.size * 2));
      }
      state.longs[state.size++] = (Long) item;
    }
    return state;
  }

  /** Turns the current day's values into its record, and forgets them. */
  private void finish(State state) {
    Record record = state.current;
    if (record == null) {
      return;
    }
    state.current = null;
    state.left.add(record.day);
    boolean numeric = numeric();
    if (numeric) {
      record.flags |= NUMERIC;
    }
    if ((record.flags & GAVE_UP) == 0) {
      int n = state.size;
      record.count = n;
      if (numeric) {
        double[] values = state.doubles;
        Arrays.sort(values, 0, n);
        record.distinct = distinct(values, n);
        if (n > 0) {
          record.min = values[0];
          record.max = values[n - 1];
          record.mean = mean(values, n);
          record.stddev = n > 1 ? stddev(values, n, record.mean) : Double.NaN;
          record.p50 = values[rank(0.5, n)];
          record.p95 = values[rank(0.95, n)];
        }
      } else {
        long[] values = state.longs;
        Arrays.sort(values, 0, n);
        long unique = n > 0 ? 1 : 0;
        for (int i = 1; i < n; i++) {
          if (values[i] != values[i - 1]) {
            unique++;
          }
        }
        record.distinct = unique;
      }
    } else {
      record.count = record.rows - record.nulls;
    }
    state.size = 0;
    state.doubles = new double[0];
    state.longs = new long[0];
    Record earlier = state.days.get(record.day);
    state.days.put(record.day, earlier == null ? record : split(earlier, record));
  }

  private static long distinct(double[] values, int n) {
    long unique = n > 0 ? 1 : 0;
    for (int i = 1; i < n; i++) {
      if (values[i] != values[i - 1]) {
        unique++;
      }
    }
    return unique;
  }

  // Index of the value of rank ceil(p * n) among n sorted values.
  private static int rank(double p, int n) {
    return Math.max(0, Math.min(n - 1, (int) Math.ceil(p * n) - 1));
  }

  // Compensated (Neumaier) sum, divided by n.
  private static double mean(double[] values, int n) {
    double sum = 0;
    double carry = 0;
    for (int i = 0; i < n; i++) {
      double v = values[i];
      double t = sum + v;
      carry += Math.abs(sum) >= Math.abs(v) ? (sum - t) + v : (v - t) + sum;
      sum = t;
    }
    return (sum + carry) / n;
  }

  private static double stddev(double[] values, int n, double mean) {
    double squares = 0;
    for (int i = 0; i < n; i++) {
      double d = values[i] - mean;
      squares += d * d;
    }
    return Math.sqrt(squares / (n - 1));
  }

  // Two records of one day: only the counts add up; the day must be computed otherwise.
  private static Record split(Record a, Record b) {
    Record out = new Record();
    out.day = a.day;
    out.flags = (a.flags | b.flags) | SPLIT;
    out.rows = a.rows + b.rows;
    out.nulls = a.nulls + b.nulls;
    out.count = a.count + b.count;
    return out;
  }

  @Override
  public State merge(State state, State other) {
    finish(state);
    finish(other);
    for (Map.Entry<Long, Record> entry : other.days.entrySet()) {
      Record earlier = state.days.get(entry.getKey());
      state.days.put(entry.getKey(), earlier == null ? entry.getValue() : split(earlier, entry.getValue()));
    }
    return state;
  }

  @Override
  public Object eval(State state) {
    return serialize(state);
  }

  @Override
  public byte[] serialize(State state) {
    finish(state);
    ByteBuffer buffer = ByteBuffer.allocate(4 + RECORD_BYTES * state.days.size());
    buffer.putInt(state.days.size());
    for (Record r : state.days.values()) {
      buffer.putLong(r.day).putInt(r.flags).putLong(r.rows).putLong(r.nulls).putLong(r.count);
      buffer.putDouble(r.min).putDouble(r.max).putDouble(r.mean).putDouble(r.stddev).putDouble(r.p50)
          .putDouble(r.p95).putLong(r.distinct);
    }
    return buffer.array();
  }

  @Override
  public State deserialize(byte[] bytes) {
    ByteBuffer buffer = ByteBuffer.wrap(bytes);
    State state = new State();
    int records = buffer.getInt();
    for (int i = 0; i < records; i++) {
      Record r = new Record();
      r.day = buffer.getLong();
      r.flags = buffer.getInt();
      r.rows = buffer.getLong();
      r.nulls = buffer.getLong();
      r.count = buffer.getLong();
      r.min = buffer.getDouble();
      r.max = buffer.getDouble();
      r.mean = buffer.getDouble();
      r.stddev = buffer.getDouble();
      r.p50 = buffer.getDouble();
      r.p95 = buffer.getDouble();
      r.distinct = buffer.getLong();
      state.days.put(r.day, r);
    }
    return state;
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
  public DayStats withNewMutableAggBufferOffset(int offset) {
    return new DayStats(day, value, maxValues, offset, inputOffset);
  }

  @Override
  public DayStats withNewInputAggBufferOffset(int offset) {
    return new DayStats(day, value, maxValues, mutableOffset, offset);
  }

  @Override
  public boolean nullable() {
    return false;
  }

  @Override
  public DataType dataType() {
    return DataTypes.BinaryType;
  }

  @Override
  public Seq<Expression> children() {
    return CollectionConverters.asScala(Arrays.asList(day, value)).toSeq();
  }

  @Override
  public Expression withNewChildrenInternal(IndexedSeq<Expression> children) {
    return new DayStats(children.apply(0), children.apply(1), maxValues, mutableOffset, inputOffset);
  }

  @Override
  public int productArity() {
    return 5;
  }

  @Override
  public Object productElement(int n) {
    switch (n) {
      case 0:
        return day;
      case 1:
        return value;
      case 2:
        return maxValues;
      case 3:
        return mutableOffset;
      default:
        return inputOffset;
    }
  }

  @Override
  public boolean canEqual(Object other) {
    return other instanceof DayStats;
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof DayStats)) {
      return false;
    }
    DayStats that = (DayStats) other;
    return day.equals(that.day) && value.equals(that.value) && maxValues == that.maxValues
        && mutableOffset == that.mutableOffset && inputOffset == that.inputOffset;
  }

  @Override
  public int hashCode() {
    return 31 * day.hashCode() + value.hashCode();
  }

  @Override
  public String prettyName() {
    return "day_stats";
  }
}
