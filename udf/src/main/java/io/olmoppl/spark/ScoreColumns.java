package io.olmoppl.spark;

import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/** The columns scoring appends to every input row. */
public final class ScoreColumns {
  public static final String TOKENS = "ppl_tokens";
  public static final String NLL = "ppl_nll";
  public static final String PERPLEXITY = "perplexity";
  public static final String BITS_PER_BYTE = "bits_per_byte";
  public static final String WINDOWS = "ppl_windows";
  public static final String STATUS = "ppl_status";
  public static final String MODEL = "ppl_model";
  public static final String TOKEN_LOGPROBS = "ppl_token_logprobs";

  private ScoreColumns() {}

  /** @return the appended fields, in order */
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
      f.add(DataTypes.createStructField(TOKEN_LOGPROBS, DataTypes.createArrayType(DataTypes.DoubleType, false),
          true));
    }
    return f;
  }

  /** @return {@code input} with the score fields appended; refuses an input that already has one of them */
  public static StructType outputSchema(StructType input, boolean tokenLogprobs) {
    StructType out = input;
    for (StructField f : fields(tokenLogprobs)) {
      if (List.of(input.fieldNames()).contains(f.name())) {
        throw new IllegalArgumentException("the input already has a column named " + f.name() + ", which olmo-ppl"
            + " writes. Rename or drop that column before scoring (e.g. select the columns you need).");
      }
      out = out.add(f);
    }
    return out;
  }
}
