// The greatest (order, value) pair of a group, as a hash-aggregable Spark aggregate.
//
// A tile's `last` is the value of the group's latest event, a tie on the time going to the largest value
// (docs/semantics.md); `first` is the same with the time negated. `max(struct(order, value))` computes exactly
// that, but Spark aggregates a struct buffer only by sorting every input row (bench/README.md, "Decision
// records"). Here the buffer is two plain columns (order, value), so Spark plans a code-generated hash
// aggregation whenever the value is of a fixed-width type, and the result is the same struct<o, v>, so stored
// tiles do not change.
// Rows with a null order or value never enter; an empty group gives null, as max(struct) over
// `when(value is not null, ...)` does. featurekiln/internals/jars.py compiles it; compute/aggregations.py
// uses it when the session's JVM has it, and max(struct) otherwise.
package featurekiln;

import java.util.Arrays;
import org.apache.spark.sql.catalyst.expressions.And;
import org.apache.spark.sql.catalyst.expressions.AttributeReference;
import org.apache.spark.sql.catalyst.expressions.CreateNamedStruct;
import org.apache.spark.sql.catalyst.expressions.EqualTo;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.GreaterThan;
import org.apache.spark.sql.catalyst.expressions.If;
import org.apache.spark.sql.catalyst.expressions.IsNotNull;
import org.apache.spark.sql.catalyst.expressions.IsNull;
import org.apache.spark.sql.catalyst.expressions.Literal;
import org.apache.spark.sql.catalyst.expressions.NamedExpression;
import org.apache.spark.sql.catalyst.expressions.Or;
import org.apache.spark.sql.catalyst.expressions.aggregate.DeclarativeAggregate;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.Metadata;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;

public class MaxPair extends DeclarativeAggregate {
  private final Expression order;
  private final Expression value;
  private AttributeReference o;
  private AttributeReference v;

  public MaxPair(Expression order, Expression value) {
    this.order = order;
    this.value = value;
  }

  @SafeVarargs
  private static <T> Seq<T> seq(T... items) {
    return CollectionConverters.asScala(Arrays.asList(items)).toSeq();
  }

  private static AttributeReference attribute(String name, DataType type) {
    return new AttributeReference(name, type, true, Metadata.empty(), NamedExpression.newExprId(), seq());
  }

  // The buffer's attributes, made once the children are resolved (their types are known then).
  private synchronized void buffer() {
    if (o == null) {
      o = attribute("o", order.dataType());
      v = attribute("v", value.dataType());
    }
  }

  // The other buffer's attribute in a merge.
  private AttributeReference right(AttributeReference a) {
    return inputAggBufferAttributes().apply(aggBufferAttributes().indexOf(a));
  }

  // (no, nv) beats the buffer (bo, bv): nv is there, and the buffer is empty or no > bo or (no = bo and nv > bv).
  private static Expression beats(Expression no, Expression nv, Expression bo, Expression bv) {
    Expression later = new Or(new GreaterThan(no, bo), new And(new EqualTo(no, bo), new GreaterThan(nv, bv)));
    return new And(new And(new IsNotNull(no), new IsNotNull(nv)), new Or(new IsNull(bo), later));
  }

  @Override
  public Seq<AttributeReference> aggBufferAttributes() {
    buffer();
    return seq(o, v);
  }

  @Override
  public Seq<Expression> initialValues() {
    return seq(Literal.create(null, order.dataType()), Literal.create(null, value.dataType()));
  }

  @Override
  public Seq<Expression> updateExpressions() {
    buffer();
    Expression take = beats(order, value, o, v);
    return seq(new If(take, order, o), new If(take, value, v));
  }

  @Override
  public Seq<Expression> mergeExpressions() {
    buffer();
    AttributeReference ro = right(o);
    AttributeReference rv = right(v);
    Expression take = beats(ro, rv, o, v);
    return seq(new If(take, ro, o), new If(take, rv, v));
  }

  @Override
  public Expression evaluateExpression() {
    buffer();
    Expression pair = new CreateNamedStruct(
        seq(Literal.create("o", DataTypes.StringType), o, Literal.create("v", DataTypes.StringType), v));
    return new If(new IsNull(o), Literal.create(null, dataType()), pair);
  }

  @Override
  public boolean nullable() {
    return true;
  }

  @Override
  public DataType dataType() {
    return new StructType(new StructField[] {
      new StructField("o", order.dataType(), true, Metadata.empty()),
      new StructField("v", value.dataType(), true, Metadata.empty()),
    });
  }

  @Override
  public Seq<Expression> children() {
    return seq(order, value);
  }

  @Override
  public Expression withNewChildrenInternal(IndexedSeq<Expression> children) {
    return new MaxPair(children.apply(0), children.apply(1));
  }

  @Override
  public int productArity() {
    return 2;
  }

  @Override
  public Object productElement(int n) {
    return n == 0 ? order : value;
  }

  @Override
  public boolean canEqual(Object other) {
    return other instanceof MaxPair;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof MaxPair && ((MaxPair) other).order.equals(order) && ((MaxPair) other).value.equals(value);
  }

  @Override
  public int hashCode() {
    return 31 * order.hashCode() + value.hashCode();
  }

  @Override
  public String prettyName() {
    return "max_pair";
  }
}
