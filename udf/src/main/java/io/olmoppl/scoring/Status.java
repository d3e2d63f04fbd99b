package io.olmoppl.scoring;

import java.util.Locale;

/**
 * A scored row's status, the {@code ppl_status} column (README, "Scoring contract"): {@link #OK} is
 * the only status whose numbers count in the corpus figures. Written as {@link #id()}.
 */
public enum Status {
  /** At least one target scored, and the sum is finite. */
  OK,
  /** The text has no tokens. */
  EMPTY,
  /** The text has tokens but no target to score (one token and no prefix). */
  TOO_SHORT,
  /** The text is null. */
  NULL_TEXT,
  /** The sum of log-probs is NaN or infinite (bad weights): never ok. */
  NON_FINITE,
  /** A window of the document did not fit in memory even alone; nothing of it is reported. */
  OUT_OF_MEMORY,
  /** The input record could not be parsed (the job's permissive readers); set by the job. */
  MALFORMED;

  /**
   * @return the status as written in the output: the lower-case name
   */
  public String id() {
    return name().toLowerCase(Locale.ROOT);
  }
}
