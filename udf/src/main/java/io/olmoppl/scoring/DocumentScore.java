package io.olmoppl.scoring;

/**
 * One document's result under the scoring contract of the README ("Scoring contract").
 *
 * @param tokens number of scored targets
 * @param nll sum of -ln p(target | context) in nats; 0 when nothing is scored
 * @param windows forward passes run
 * @param bytes UTF-8 length of the text
 * @param status ok, empty, too_short, null_text, non_finite (a NaN or infinite sum: never ok) or
 *     out_of_memory
 * @param tokenLogprobs one log-prob per scored target in order, or null when not requested
 */
public record DocumentScore(
    int tokens, double nll, int windows, long bytes, Status status, double[] tokenLogprobs) {

  /**
   * @return exp(nll / tokens), or null when nothing is scored ({@link Perplexity})
   */
  public Double perplexity() {
    return Perplexity.perplexity(nll, tokens);
  }

  /**
   * @return nll / (bytes ln 2), or null when nothing is scored ({@link Perplexity})
   */
  public Double bitsPerByte() {
    return Perplexity.bitsPerByte(nll, tokens, bytes);
  }
}
