package io.olmoppl.job.score;

import io.olmoppl.job.cli.Args;
import io.olmoppl.job.cli.UsageException;
import java.util.Locale;

/**
 * Options of a {@code score} run that concern the run rather than the numbers: what to do with an
 * existing output, an earlier output to carry scores from, malformed input lines and the weight
 * scan.
 *
 * @param overwrite {@code --mode overwrite}: replace an existing output (default {@code error}:
 *     refuse)
 * @param previous {@code --previous}: an earlier output of this command, or null
 * @param idColumn {@code --id-column}: the row key for {@code --previous} (and the key that {@code
 *     --output-columns scores} keeps), or null for a hash of the text
 * @param failOnMalformed {@code --on-malformed fail}: stop the run on malformed JSON lines
 *     (default: status)
 * @param scanWeights {@code --scan-weights}: refuse NaN or infinite weights before scoring (default
 *     true)
 */
public record RunOptions(
    boolean overwrite,
    String previous,
    String idColumn,
    boolean failOnMalformed,
    boolean scanWeights) {
  static RunOptions from(Args a) {
    String mode = a.get("mode", "error").toLowerCase(Locale.ROOT);
    if (!mode.equals("error") && !mode.equals("overwrite")) {
      throw new UsageException("--mode must be error or overwrite, not '" + mode + "'");
    }
    String malformed = a.get("on-malformed", "status").toLowerCase(Locale.ROOT);
    if (!malformed.equals("status") && !malformed.equals("fail")) {
      throw new UsageException("--on-malformed must be status or fail, not '" + malformed + "'");
    }
    String scan = a.get("scan-weights", "true").toLowerCase(Locale.ROOT);
    if (!scan.equals("true") && !scan.equals("false")) {
      throw new UsageException("--scan-weights must be true or false, not '" + scan + "'");
    }
    String id = a.get("id-column");
    if (id != null && a.get("previous") == null && a.get("output-columns") == null) {
      throw new UsageException(
          "--id-column is the row key for --previous and --output-columns; pass one of them"
              + " too, or drop it");
    }
    return new RunOptions(
        mode.equals("overwrite"),
        a.get("previous"),
        id,
        malformed.equals("fail"),
        scan.equals("true"));
  }
}
