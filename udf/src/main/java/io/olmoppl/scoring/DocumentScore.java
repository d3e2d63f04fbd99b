package io.olmoppl.scoring;

/**
 * One document's result under the scoring contract of the README ("Scoring contract").
 *
 * @param tokens number of scored targets
 * @param nll sum of -ln p(target | context) in nats; 0 when nothing is scored
 * @param windows forward passes run
 * @param bytes UTF-8 length of the text
 * @param status ok, empty, too_short, null_text or non_finite (a NaN or infinite sum: never ok)
 * @param tokenLogprobs one log-prob per scored target in order, or null when not requested
 */
public record DocumentScore(
    int tokens, double nll, int windows, long bytes, String status, double[] tokenLogprobs) {
  public static final String OK = "ok";
  public static final String EMPTY = "empty";
  public static final String TOO_SHORT = "too_short";
  public static final String NULL_TEXT = "null_text";
  public static final String NON_FINITE = "non_finite";

  /**
   * @return exp(nll / tokens), or null when nothing is scored
   */
  public Double perplexity() {
    return tokens == 0 ? null : Math.exp(nll / tokens);
  }

  /**
   * @return nll / (bytes ln 2), or null when nothing is scored
   */
  public Double bitsPerByte() {
    return tokens == 0 || bytes == 0 ? null : nll / (bytes * Math.log(2));
  }
}
