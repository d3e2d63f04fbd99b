package io.olmoppl.scoring;

import ai.djl.ndarray.NDManager;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.model.OlmoModel.Window;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Scores documents: tokenize, prefix, cut into windows, batch the windows of many documents by a
 * padded-token budget (sorted by length so padding stays small), run each batch in its own scoped
 * manager, and sum per document.
 *
 * <p>A document's score does not depend on its batch companions: rows are independent under the
 * causal mask. Thread-safe: the model is shared, all per-call state is local.
 */
public final class PerplexityScorer {
  private final OlmoModel model;
  private final OlmoTokenizer tokenizer;
  private final ScoringOptions options;
  private final int window;
  private final int stride;
  private final long prefix;

  /**
   * @throws IllegalArgumentException when the window exceeds the model's positions without {@code
   *     allowLongWindow}
   */
  public PerplexityScorer(OlmoModel model, OlmoTokenizer tokenizer, ScoringOptions options) {
    this.model = model;
    this.tokenizer = tokenizer;
    this.options = options;
    OlmoConfig c = model.config();
    this.window = resolveWindow(c, options);
    this.stride = resolveStride(window, options);
    this.prefix = prefixToken(c, options.bos());
  }

  /**
   * Largest window L accepted: one (L, L) float32 attention tensor must stay under 2^31 bytes, the
   * most a Java array or buffer can address (floor(sqrt(2^31 / 4)) = 23170).
   */
  public static final int MAX_WINDOW = (int) Math.sqrt(Integer.MAX_VALUE / (double) Float.BYTES);

  /**
   * @return the window L these options give for this config
   */
  public static int resolveWindow(OlmoConfig c, ScoringOptions o) {
    int w = o.window() == null ? c.maxPositionEmbeddings() : o.window();
    if (w > MAX_WINDOW) {
      throw new IllegalArgumentException(
          (o.window() == null
                  ? "the model's " + w + " positions (the default" + " window)"
                  : "--window " + w)
              + " is more than the "
              + MAX_WINDOW
              + " tokens a window can hold: its"
              + " (L, L) attention scores would exceed 2^31 bytes. Pass --window "
              + MAX_WINDOW
              + " or less (with"
              + " --stride to overlap windows).");
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
   * Scores texts in this thread; a null text gets status {@code null_text}. The executors' engine
   * ({@code io.olmoppl.batching.ScoringEngine}) uses the same planning, packing and collecting across
   * tasks.
   *
   * @return one score per text, in order
   */
  public List<DocumentScore> score(List<String> texts) {
    long[][] ids = tokenizer.encodeAll(texts);
    long[] bytes = new long[texts.size()];
    for (int i = 0; i < texts.size(); i++) {
      bytes[i] = utf8Length(texts.get(i));
    }
    return scoreIds(Arrays.asList(ids), bytes);
  }

  /**
   * Scores token ids (without prefix).
   *
   * @param ids per document, its text token ids; null for a null text
   * @param bytes per document, the UTF-8 length of its text
   */
  public List<DocumentScore> scoreIds(List<long[]> ids, long[] bytes) {
    record Item(int doc, int index, Window window) {}
    List<List<Window>> plans = new ArrayList<>(ids.size());
    List<Item> items = new ArrayList<>();
    for (int d = 0; d < ids.size(); d++) {
      List<Window> plan = plan(ids.get(d));
      plans.add(plan);
      for (int w = 0; w < plan.size(); w++) {
        items.add(new Item(d, w, plan.get(w)));
      }
    }
    float[][][] results = new float[ids.size()][][];
    for (int d = 0; d < ids.size(); d++) {
      results[d] = new float[plans.get(d).size()][];
    }
    for (List<Item> batch :
        Packing.batches(items, it -> it.window().inputLength(), options.batchTokens())) {
      float[][] lp;
      try (NDManager bm = model.newBatchManager()) {
        lp = model.logProbs(bm, batch.stream().map(Item::window).toList());
      }
      for (int k = 0; k < batch.size(); k++) {
        results[batch.get(k).doc()][batch.get(k).index()] = lp[k];
      }
    }
    List<DocumentScore> out = new ArrayList<>(ids.size());
    for (int d = 0; d < ids.size(); d++) {
      out.add(collect(ids.get(d), bytes[d], results[d]));
    }
    return out;
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
          0, 0.0, 0, 0, DocumentScore.NULL_TEXT, options.tokenLogprobs() ? new double[0] : null);
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
    String status =
        n > 0
            ? (Double.isFinite(nll) ? DocumentScore.OK : DocumentScore.NON_FINITE)
            : ids.length == 0 ? DocumentScore.EMPTY : DocumentScore.TOO_SHORT;
    return new DocumentScore(
        n, n == 0 ? 0.0 : nll, windows.length, bytes, status, options.tokenLogprobs() ? lps : null);
  }
}
