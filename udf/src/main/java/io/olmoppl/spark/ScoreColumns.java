package io.olmoppl.spark;

import io.olmoppl.scoring.DocumentScore;
import io.olmoppl.scoring.Status;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import scala.collection.immutable.ArraySeq;

/**
 * The columns scoring appends to every input row, the one place of their names, types, order and
 * values: the job's partition function ({@link ScorePartitionFunction}) and the SQL function
 * ({@link ScoreUdf}) both write {@link #values}.
 */
public final class ScoreColumns {
  public static final String TOKENS = "ppl_tokens";
  public static final String NLL = "ppl_nll";
  public static final String PERPLEXITY = "perplexity";
  public static final String BITS_PER_BYTE = "bits_per_byte";
  public static final String WINDOWS = "ppl_windows";
  public static final String STATUS = "ppl_status";
  public static final String MODEL = "ppl_model";
  public static final String TOKEN_LOGPROBS = "ppl_token_logprobs";

  /**
   * One appended column.
   *
   * @param value its value for a document's score and the row stamp
   */
  private record Column(
      String name,
      DataType type,
      boolean nullable,
      BiFunction<DocumentScore, String, Object> value) {}

  /** The columns always appended, in order. */
  private static final List<Column> COLUMNS =
      List.of(
          new Column(TOKENS, DataTypes.IntegerType, false, (s, stamp) -> s.tokens()),
          new Column(NLL, DataTypes.DoubleType, false, (s, stamp) -> s.nll()),
          new Column(PERPLEXITY, DataTypes.DoubleType, true, (s, stamp) -> s.perplexity()),
          new Column(BITS_PER_BYTE, DataTypes.DoubleType, true, (s, stamp) -> s.bitsPerByte()),
          new Column(WINDOWS, DataTypes.IntegerType, false, (s, stamp) -> s.windows()),
          new Column(STATUS, DataTypes.StringType, false, (s, stamp) -> s.status().id()),
          new Column(MODEL, DataTypes.StringType, false, (s, stamp) -> stamp));

  /**
   * Last, when token log-probs are requested: null for a null text, else one log-prob per scored
   * target (a Scala sequence over the primitive array).
   */
  private static final Column LOGPROBS =
      new Column(
          TOKEN_LOGPROBS,
          DataTypes.createArrayType(DataTypes.DoubleType, false),
          true,
          (s, stamp) ->
              s.status() == Status.NULL_TEXT ? null : ArraySeq.unsafeWrapArray(s.tokenLogprobs()));

  private ScoreColumns() {}

  private static List<Column> columns(boolean tokenLogprobs) {
    if (!tokenLogprobs) {
      return COLUMNS;
    }
    List<Column> all = new ArrayList<>(COLUMNS);
    all.add(LOGPROBS);
    return all;
  }

  /**
   * @return the appended fields, in order
   */
  public static List<StructField> fields(boolean tokenLogprobs) {
    return columns(tokenLogprobs).stream()
        .map(c -> DataTypes.createStructField(c.name(), c.type(), c.nullable()))
        .toList();
  }

  /**
   * @return how many columns are appended
   */
  public static int count(boolean tokenLogprobs) {
    return COLUMNS.size() + (tokenLogprobs ? 1 : 0);
  }

  /**
   * @param stamp the row stamp ({@link OlmoPerplexity#stamp})
   * @return a document's values of the appended columns, in the order of {@link #fields}
   */
  public static Object[] values(DocumentScore s, String stamp, boolean tokenLogprobs) {
    return columns(tokenLogprobs).stream().map(c -> c.value().apply(s, stamp)).toArray();
  }

  /**
   * @return {@code input} with the score fields appended; refuses an input that already has one of
   *     them
   */
  public static StructType outputSchema(StructType input, boolean tokenLogprobs) {
    StructType out = input;
    for (StructField f : fields(tokenLogprobs)) {
      if (List.of(input.fieldNames()).contains(f.name())) {
        throw new IllegalArgumentException(
            "the input already has a column named "
                + f.name()
                + ", which olmo-ppl"
                + " writes. Rename or drop that column before scoring (e.g. select the columns you need).");
      }
      out = out.add(f);
    }
    return out;
  }
}
