package io.olmoppl.spark;

import io.olmoppl.batching.ScoreVectors;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * The columns scoring appends to every input row: the engine's result columns ({@link
 * ScoreVectors}, where their names live) and the row stamp.
 */
public final class ScoreColumns {
  public static final String TOKENS = ScoreVectors.TOKENS;
  public static final String NLL = ScoreVectors.NLL;
  public static final String PERPLEXITY = ScoreVectors.PERPLEXITY;
  public static final String BITS_PER_BYTE = ScoreVectors.BITS_PER_BYTE;
  public static final String WINDOWS = ScoreVectors.WINDOWS;
  public static final String STATUS = ScoreVectors.STATUS;
  public static final String MODEL = "ppl_model";
  public static final String TOKEN_LOGPROBS = ScoreVectors.TOKEN_LOGPROBS;

  private ScoreColumns() {}

  /**
   * @return the appended fields, in order
   */
  public static List<StructField> fields(boolean tokenLogprobs) {
    List<StructField> f = new ArrayList<>();
    f.add(DataTypes.createStructField(TOKENS, DataTypes.IntegerType, false));
    f.add(DataTypes.createStructField(NLL, DataTypes.DoubleType, false));
    f.add(DataTypes.createStructField(PERPLEXITY, DataTypes.DoubleType, true));
    f.add(DataTypes.createStructField(BITS_PER_BYTE, DataTypes.DoubleType, true));
    f.add(DataTypes.createStructField(WINDOWS, DataTypes.IntegerType, false));
    f.add(DataTypes.createStructField(STATUS, DataTypes.StringType, false));
    f.add(DataTypes.createStructField(MODEL, DataTypes.StringType, false));
    if (tokenLogprobs) {
      f.add(
          DataTypes.createStructField(
              TOKEN_LOGPROBS, DataTypes.createArrayType(DataTypes.DoubleType, false), true));
    }
    return f;
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
