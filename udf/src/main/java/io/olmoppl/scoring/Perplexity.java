package io.olmoppl.scoring;

/**
 * The two figures derived from a sum of negative log-likelihoods, for one document or a corpus
 * micro-average (README, "Scoring contract"; Hugging Face's perplexity guide): perplexity = exp(nll
 * / tokens) and bits per byte = nll / (bytes ln 2). The one place they are computed.
 */
public final class Perplexity {
  private Perplexity() {}

  /**
   * @param nll sum of -ln p in nats
   * @param tokens targets the sum is over
   * @return exp(nll / tokens), or null when nothing is scored
   */
  public static Double perplexity(double nll, long tokens) {
    return tokens == 0 ? null : Math.exp(nll / tokens);
  }

  /**
   * @param nll sum of -ln p in nats
   * @param tokens targets the sum is over
   * @param bytes UTF-8 bytes of the scored texts
   * @return nll / (bytes ln 2), or null when nothing is scored or there are no bytes
   */
  public static Double bitsPerByte(double nll, long tokens, long bytes) {
    return tokens == 0 || bytes == 0 ? null : nll / (bytes * Math.log(2));
  }
}
