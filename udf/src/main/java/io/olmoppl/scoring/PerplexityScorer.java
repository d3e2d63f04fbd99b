package io.olmoppl.scoring;

import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.model.Window;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The scoring contract for one set of options resolved against a model's config: {@link #plan}
 * prefixes a document's token ids and cuts them into windows, {@link #collect} sums the windows'
 * log-probs into the document's score. Running the windows is the engine's job ({@code
 * io.olmoppl.batching.ScoringEngine}, which batches the windows of many documents); a document's
 * score does not depend on its batch companions, as rows are independent under the causal mask.
 * Immutable and thread-safe.
 */
public final class PerplexityScorer {
  private final ScoringOptions options;
  private final int window;
  private final int stride;
  private final long prefix;

  /**
   * @throws IllegalArgumentException when the window exceeds the model's positions without {@code
   *     allowLongWindow}
   */
  public PerplexityScorer(OlmoConfig c, ScoringOptions options) {
    this.options = options;
    this.window = resolveWindow(c, options);
    this.stride = resolveStride(window, options);
    this.prefix = prefixToken(c, options.bos());
  }

  /**
   * Largest window L accepted for a config: attention runs in query blocks over the keys in reach
   * (see the model's memory budget), so no (L, L) tensor is ever built; what must still fit in one
   * Java array is a window's (L, D) rotary table, L x D float32 values. For D = 128 that is 16.7 M
   * tokens, far beyond any model's positions.
   */
  public static int maxWindow(OlmoConfig c) {
    return Integer.MAX_VALUE / c.headDim();
  }

  /**
   * @return the window L these options give for this config
   */
  public static int resolveWindow(OlmoConfig c, ScoringOptions o) {
    int w = o.window() == null ? c.maxPositionEmbeddings() : o.window();
    if (w > maxWindow(c)) {
      throw new IllegalArgumentException(
          (o.window() == null
                  ? "the model's " + w + " positions (the default" + " window)"
                  : "--window " + w)
              + " is more than the "
              + maxWindow(c)
              + " tokens a window can hold: its (L, "
              + c.headDim()
              + ") rotary table would exceed 2^31 values. Pass --window "
              + maxWindow(c)
              + " or less (with --stride to overlap windows).");
    }
    if (w > c.maxPositionEmbeddings() && !o.allowLongWindow()) {
      throw new IllegalArgumentException(
          "--window "
              + w
              + " is larger than the model's "
              + c.maxPositionEmbeddings()
              + " positions; rotary positions past what the model was trained on give meaningless scores. Use --window "
              + c.maxPositionEmbeddings()
              + " or less, or add --allow-long-window if you mean it.");
    }
    return w;
  }

  /**
   * @return the stride S these options give for window {@code window} (default: S = L, disjoint
   *     windows)
   */
  public static int resolveStride(int window, ScoringOptions o) {
    int s = o.stride() == null ? window : o.stride();
    if (s > window) {
      throw new IllegalArgumentException(
          "--stride "
              + s
              + " is larger than the window "
              + window
              + "; pass a stride between 1 and the window");
    }
    return s;
  }

  /**
   * @return the prefix token for {@code bos}, or -1 for none
   */
  public static long prefixToken(OlmoConfig c, Bos bos) {
    return switch (bos) {
      case NONE -> -1;
      case EOS -> c.eosTokenId();
      case AUTO -> c.bosTokenId() != null ? c.bosTokenId() : c.eosTokenId();
    };
  }

  public int window() {
    return window;
  }

  public int stride() {
    return stride;
  }

  public long prefix() {
    return prefix;
  }

  public ScoringOptions options() {
    return options;
  }

  /**
   * @return the windows of a document's text token ids (prefix added here); empty for a null text
   */
  public List<Window> plan(long[] textIds) {
    return textIds == null ? List.of() : WindowPlan.plan(fed(textIds), window, stride);
  }

  /**
   * @return the UTF-8 length of a text, 0 for null
   */
  public static long utf8Length(String text) {
    return text == null ? 0 : text.getBytes(StandardCharsets.UTF_8).length;
  }

  private long[] fed(long[] t) {
    if (prefix < 0) {
      return t;
    }
    long[] x = new long[t.length + 1];
    x[0] = prefix;
    System.arraycopy(t, 0, x, 1, t.length);
    return x;
  }

  /**
   * A document's score from its windows' log-probs.
   *
   * @param ids the text token ids (null for a null text)
   * @param windows per window of {@link #plan}, its scored log-probs
   */
  public DocumentScore collect(long[] ids, long bytes, float[][] windows) {
    if (ids == null) {
      return new DocumentScore(
          0, 0.0, 0, 0, Status.NULL_TEXT, options.tokenLogprobs() ? new double[0] : null);
    }
    int n = 0;
    for (float[] w : windows) {
      n += w.length;
    }
    double[] lps = new double[n];
    double nll = 0;
    int k = 0;
    for (float[] w : windows) {
      for (float v : w) {
        lps[k++] = v;
        nll -= v;
      }
    }
    Status status =
        n > 0
            ? (Double.isFinite(nll) ? Status.OK : Status.NON_FINITE)
            : ids.length == 0 ? Status.EMPTY : Status.TOO_SHORT;
    return new DocumentScore(
        n, n == 0 ? 0.0 : nll, windows.length, bytes, status, options.tokenLogprobs() ? lps : null);
  }
}
