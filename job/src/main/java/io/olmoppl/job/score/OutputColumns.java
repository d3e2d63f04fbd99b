package io.olmoppl.job.score;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.sha2;

import io.olmoppl.job.cli.JobException;
import io.olmoppl.job.cli.UsageException;
import io.olmoppl.job.report.Buckets;
import io.olmoppl.spark.ScoreColumns;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.StructField;

/**
 * {@code --output-columns}: a scores-only output, as Dolma writes scores as "attributes" beside the
 * documents. The output keeps the named key columns (names or globs such as {@code id} or {@code
 * meta_*}; the keyword {@code scores} names the {@code --id-column}) plus every score column
 * ({@link ScoreColumns}, {@link Buckets#COLUMN}) and, when the text is left out, {@link #TEXT_HASH}
 * (so that the output can serve as {@code --previous}: an edited text is scored again). Rows are
 * joined back to the documents by the key.
 *
 * @param entries the names, globs and keywords as given
 */
public record OutputColumns(List<String> entries) {
  public static final String SCORES = "scores";

  /** SHA-256 of the text's UTF-8 bytes (hex), written when the text column is left out. */
  public static final String TEXT_HASH = "ppl_text_sha256";

  /**
   * @return the parsed list, or null for every column (no {@code --output-columns})
   */
  static OutputColumns parse(String spec) {
    if (spec == null) {
      return null;
    }
    List<String> e = Arrays.stream(spec.split(",")).map(String::trim).toList();
    if (e.stream().anyMatch(String::isEmpty)) {
      throw new UsageException(
          "--output-columns: an empty name in '"
              + spec
              + "'. List key columns and globs, e.g. id,ppl_* or the keyword scores");
    }
    return new OutputColumns(e);
  }

  /**
   * Resolves the list against the input's columns before any work.
   *
   * @param input the input's column names
   * @param idColumn {@code --id-column} or null
   * @return the input columns to keep, in input order (never empty)
   */
  List<String> keys(String[] input, String idColumn, boolean tokenLogprobs) {
    Set<String> scores = scoreColumns(tokenLogprobs);
    Set<String> keep = new LinkedHashSet<>();
    for (String e : entries) {
      if (e.equals(SCORES)) {
        if (idColumn == null) {
          throw new UsageException(
              "--output-columns scores keeps the --id-column and the score columns; name the key"
                  + " with --id-column COLUMN (e.g. --id-column id), or list the key columns"
                  + " (e.g. --output-columns id,ppl_*)");
        }
        keep.add(idColumn);
        continue;
      }
      Pattern p = glob(e);
      boolean any = false;
      for (String c : input) {
        if (p.matcher(c).matches()) {
          keep.add(c);
          any = true;
        }
      }
      if (!any && scores.stream().noneMatch(c -> p.matcher(c).matches())) {
        throw new JobException(
            "--output-columns: '"
                + e
                + "' names no column of the input or the scores. The input's columns are: "
                + String.join(", ", input)
                + "; the score columns (always written) are: "
                + String.join(", ", scores));
      }
    }
    if (idColumn != null && !Arrays.asList(input).contains(idColumn)) {
      throw new JobException(
          "--id-column '"
              + idColumn
              + "' is not in the input. Its columns are: "
              + String.join(", ", input));
    }
    List<String> kept = new ArrayList<>();
    for (String c : input) {
      if (keep.contains(c) && !scores.contains(c)) {
        kept.add(c);
      }
    }
    if (kept.isEmpty()) {
      throw new JobException(
          "--output-columns "
              + String.join(",", entries)
              + " keeps no input column, so the scores could not be joined back to the"
              + " documents. Add the key column (e.g. --output-columns id,ppl_*) or use"
              + " --output-columns scores with --id-column.");
    }
    return kept;
  }

  /**
   * @return the rows to write: the kept input columns, the score columns, {@link Buckets#COLUMN}
   *     when present and {@link #TEXT_HASH} when the text is not kept
   */
  Dataset<Row> select(Dataset<Row> rows, Request req) {
    List<String> kept = keys(inputColumns(rows), req.run().idColumn(), lps(req));
    List<Column> cols = new ArrayList<>();
    kept.forEach(c -> cols.add(col(quote(c))));
    for (String c : rows.columns()) {
      if (scoreColumns(lps(req)).contains(c)) {
        cols.add(col(quote(c)));
      }
    }
    if (!kept.contains(req.textColumn())) {
      cols.add(sha2(col(quote(req.textColumn())), 256).as(TEXT_HASH));
    }
    return rows.select(cols.toArray(Column[]::new));
  }

  private static boolean lps(Request req) {
    return req.options().tokenLogprobs();
  }

  private static String[] inputColumns(Dataset<Row> rows) {
    Set<String> scores = scoreColumns(true);
    return Arrays.stream(rows.columns()).filter(c -> !scores.contains(c)).toArray(String[]::new);
  }

  private static Set<String> scoreColumns(boolean tokenLogprobs) {
    Set<String> s = new LinkedHashSet<>();
    for (StructField f : ScoreColumns.fields(tokenLogprobs)) {
      s.add(f.name());
    }
    s.add(Buckets.COLUMN);
    return s;
  }

  /** {@code *} any characters, {@code ?} one; everything else literal. */
  private static Pattern glob(String g) {
    StringBuilder b = new StringBuilder();
    for (String part : g.split("((?<=[*?])|(?=[*?]))")) {
      b.append(part.equals("*") ? ".*" : part.equals("?") ? "." : Pattern.quote(part));
    }
    return Pattern.compile(b.toString());
  }

  private static String quote(String column) {
    return "`" + column.replace("`", "``") + "`";
  }
}
