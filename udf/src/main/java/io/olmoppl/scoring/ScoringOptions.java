package io.olmoppl.scoring;

import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.model.Precision;
import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * How documents are scored. Defaults live here, in one place.
 *
 * @param bos prefix token rule
 * @param window L, tokens per forward pass; null = the model's max positions
 * @param stride S, new targets per window after the first (1 <= S <= L); null = L (disjoint
 *     windows)
 * @param batchTokens padded tokens per forward batch (B x T)
 * @param tokenLogprobs whether to return one log-prob per scored target
 * @param allowLongWindow allow L above the model's max positions
 * @param tying tying rule
 * @param precision matmul precision
 * @param device where the engine runs
 */
public record ScoringOptions(
    Bos bos,
    Integer window,
    Integer stride,
    int batchTokens,
    boolean tokenLogprobs,
    boolean allowLongWindow,
    TyingRule tying,
    Precision precision,
    DeviceSetting device)
    implements Serializable {
  private static final long serialVersionUID = 1L;
  public static final int BATCH_TOKENS_DEFAULT = 4096;

  public ScoringOptions {
    if (window != null && window < 1) {
      throw new IllegalArgumentException("--window must be at least 1, not " + window);
    }
    if (stride != null && stride < 1) {
      throw new IllegalArgumentException("--stride must be at least 1, not " + stride);
    }
    if (window != null && stride != null && stride > window) {
      throw new IllegalArgumentException(
          "--stride "
              + stride
              + " is larger than --window "
              + window
              + ": every target must be scored once, so the stride must be between 1 and the window");
    }
    if (batchTokens < 1) {
      throw new IllegalArgumentException("--batch-tokens must be at least 1, not " + batchTokens);
    }
  }

  /**
   * @return the defaults: bos auto, model-length disjoint windows, fp32, strict tying
   */
  public static ScoringOptions defaults() {
    return new ScoringOptions(
        Bos.AUTO,
        null,
        null,
        BATCH_TOKENS_DEFAULT,
        false,
        false,
        TyingRule.STRICT,
        Precision.FP32,
        DeviceSetting.AUTO);
  }

  public ScoringOptions withBos(Bos b) {
    return new ScoringOptions(
        b, window, stride, batchTokens, tokenLogprobs, allowLongWindow, tying, precision, device);
  }

  public ScoringOptions withWindow(Integer w, Integer s) {
    return new ScoringOptions(
        bos, w, s, batchTokens, tokenLogprobs, allowLongWindow, tying, precision, device);
  }

  public ScoringOptions withBatchTokens(int n) {
    return new ScoringOptions(
        bos, window, stride, n, tokenLogprobs, allowLongWindow, tying, precision, device);
  }

  public ScoringOptions withTokenLogprobs(boolean b) {
    return new ScoringOptions(
        bos, window, stride, batchTokens, b, allowLongWindow, tying, precision, device);
  }

  public ScoringOptions withTying(TyingRule r) {
    return new ScoringOptions(
        bos, window, stride, batchTokens, tokenLogprobs, allowLongWindow, r, precision, device);
  }

  public ScoringOptions withPrecision(Precision p) {
    return new ScoringOptions(
        bos, window, stride, batchTokens, tokenLogprobs, allowLongWindow, tying, p, device);
  }

  public ScoringOptions withDevice(DeviceSetting d) {
    return new ScoringOptions(
        bos, window, stride, batchTokens, tokenLogprobs, allowLongWindow, tying, precision, d);
  }

  public ScoringOptions withAllowLongWindow(boolean b) {
    return new ScoringOptions(
        bos, window, stride, batchTokens, tokenLogprobs, b, tying, precision, device);
  }

  /**
   * @return the options as written to the summary
   */
  public Map<String, Object> describe(int effectiveWindow, int effectiveStride, long prefixToken) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("bos", bos.id());
    m.put("prefix_token", prefixToken < 0 ? null : prefixToken);
    m.put("window", effectiveWindow);
    m.put("stride", effectiveStride);
    m.put("batch_tokens", batchTokens);
    m.put("token_logprobs", tokenLogprobs);
    m.put("tying", tying.id());
    m.put("precision", precision.id());
    m.put("device", device.id());
    return m;
  }
}
