// How many rows of each task are not strictly greater than the row before them, as a Spark aggregate
// (over a struct: its fields in order, lexicographically; the buffer holds them as plain columns).
//
// The quality gate observes it (Dataset.observe) on the rows a run writes, sorted by (ds, keys): when it
// is 0, every task's rows came in strictly increasing (ds, keys) order, so no (keys, ds) repeats inside a
// task, and with one file per day (Delta's statistics of the written files say so) none repeats at all.
// The gate then decides the compound-uniqueness check without a scan of the written rows
// (quality/one_pass.py); any break, or other files, and it scans them as before. A null value counts as a
// break. Unlike other aggregates it depends on the order in which a task sees its rows, which is what it
// measures: a 0 is a proof whatever the order, a break is only a reason to look closer. Partial results
// add up. featurekiln/compute/jars.py compiles it; without it the gate scans.
package featurekiln;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.sql.catalyst.expressions.Add;
import org.apache.spark.sql.catalyst.expressions.And;
import org.apache.spark.sql.catalyst.expressions.AttributeReference;
import org.apache.spark.sql.catalyst.expressions.CreateNamedStruct;
import org.apache.spark.sql.catalyst.expressions.EqualTo;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.GreaterThan;
import org.apache.spark.sql.catalyst.expressions.If;
import org.apache.spark.sql.catalyst.expressions.IsNull;
import org.apache.spark.sql.catalyst.expressions.Literal;
import org.apache.spark.sql.catalyst.expressions.NamedExpression;
import org.apache.spark.sql.catalyst.expressions.Or;
import org.apache.spark.sql.catalyst.expressions.aggregate.DeclarativeAggregate;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.Metadata;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;

public class OrderBreaks extends DeclarativeAggregate {
  private final Expression child;
  // The columns compared in order: a struct's fields, else the child itself.
  private final List<Expression> columns;
  private List<AttributeReference> previous;
  private AttributeReference breaks;

  public OrderBreaks(Expression child) {
    this.child = child;
    this.columns = child instanceof CreateNamedStruct
        ? CollectionConverters.asJava(((CreateNamedStruct) child).valExprs())
        : List.of(child);
  }

  @SafeVarargs
  private static <T> Seq<T> seq(T... items) {
    return CollectionConverters.asScala(Arrays.asList(items)).toSeq();
  }

  private static <T> Seq<T> seq(List<T> items) {
    return CollectionConverters.asScala(items).toSeq();
  }

  private static AttributeReference attribute(String name, DataType type, boolean nullable) {
    return new AttributeReference(name, type, nullable, Metadata.empty(), NamedExpression.newExprId(), seq());
  }

  // The buffer's attributes, made once the child is resolved (the columns' types are known then).
  private synchronized void buffer() {
    if (previous == null) {
      List<AttributeReference> made = new ArrayList<>();
      for (int i = 0; i < columns.size(); i++) {
        made.add(attribute("previous" + i, columns.get(i).dataType(), true));
      }
      previous = made;
      breaks = attribute("breaks", DataTypes.LongType, false);
    }
  }

  private static Literal count(long n) {
    return Literal.create(n, DataTypes.LongType);
  }

  @Override
  public Seq<AttributeReference> aggBufferAttributes() {
    buffer();
    List<AttributeReference> all = new ArrayList<>(previous);
    all.add(breaks);
    return seq(all);
  }

  @Override
  public Seq<Expression> initialValues() {
    List<Expression> all = new ArrayList<>();
    for (Expression column : columns) {
      all.add(Literal.create(null, column.dataType()));
    }
    all.add(count(0));
    return seq(all);
  }

  @Override
  public Seq<Expression> updateExpressions() {
    buffer();
    // The row is greater than the previous one in the columns' order (both without nulls here).
    Expression greater = new GreaterThan(columns.get(columns.size() - 1), previous.get(columns.size() - 1));
    for (int i = columns.size() - 2; i >= 0; i--) {
      Expression column = columns.get(i);
      Expression before = previous.get(i);
      greater = new Or(new GreaterThan(column, before), new And(new EqualTo(column, before), greater));
    }
    Expression hasNull = Literal.create(false, DataTypes.BooleanType);
    for (Expression column : columns) {
      hasNull = new Or(hasNull, new IsNull(column));
    }
    // A break: a null in the row, or a row not greater than the previous one (the first row has none).
    Expression broken = new If(hasNull, count(1),
        new If(new Or(new IsNull(previous.get(0)), greater), count(0), count(1)));
    List<Expression> all = new ArrayList<>();
    for (int i = 0; i < columns.size(); i++) {
      all.add(new If(hasNull, previous.get(i), columns.get(i)));
    }
    all.add(new Add(breaks, broken, Add.apply$default$3()));
    return seq(all);
  }

  @Override
  public Seq<Expression> mergeExpressions() {
    buffer();
    List<Expression> all = new ArrayList<>(previous);
    all.add(new Add(breaks, inputAggBufferAttributes().apply(columns.size()), Add.apply$default$3()));
    return seq(all);
  }

  @Override
  public Expression evaluateExpression() {
    buffer();
    return breaks;
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
    return seq(child);
  }

  @Override
  public Expression withNewChildrenInternal(IndexedSeq<Expression> children) {
    return new OrderBreaks(children.apply(0));
  }

  @Override
  public int productArity() {
    return 1;
  }

  @Override
  public Object productElement(int n) {
    return child;
  }

  @Override
  public boolean canEqual(Object other) {
    return other instanceof OrderBreaks;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof OrderBreaks && ((OrderBreaks) other).child.equals(child);
  }

  @Override
  public int hashCode() {
    return child.hashCode();
  }

  @Override
  public String prettyName() {
    return "order_breaks";
  }
}
