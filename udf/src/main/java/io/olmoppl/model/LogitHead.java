package io.olmoppl.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * The output projection and its log-softmax at the scored positions only: log p(target) = the
 * target's logit minus the log-sum-exp over all V logits. The output matrix is applied one slice of
 * its rows at a time to all rows at once (in row chunks only where a slice's logits would exceed
 * the logit budget), so the matmul reads and packs each slice once per pass, and the full (N, V)
 * logits never exist. Mirrors the tied {@code logits = x @ wte^T} of allenai {@code olmo/model.py}
 * followed by transformers' cross-entropy, per position.
 */
final class LogitHead {
  /**
   * The least exponent a slice's log-sum-exp takes exp of: exp(-87) is float32's smallest normal
   * magnitude or just above it (exp(-87.34) is FLT_MIN).
   */
  static final float MIN_EXPONENT = -87f;

  private final NDArray[] slices; // views of the output matrix, a slice of its rows each
  private final NDArray[] biasSlices; // the output bias likewise, or null
  private final double scale; // 1, or OLMo's 1/sqrt(C) where the config scales logits
  private final long sliceRows;
  private final long rowsPerStep;
  private final Precision precision;

  /**
   * Cuts the output matrix into slices of {@code sliceRows} rows: views, which share its storage,
   * so they must be made before the weights' manager is capped.
   *
   * @param output (V, C) the output matrix (the embedding itself when tied)
   * @param bias (V) or null
   * @param scale factor on every logit (1 for none)
   * @param sliceRows output rows per slice
   * @param rowsPerStep scored rows one step runs at once
   */
  LogitHead(
      NDArray output,
      NDArray bias,
      double scale,
      Precision precision,
      long sliceRows,
      long rowsPerStep) {
    long vocab = output.getShape().get(0);
    int count = (int) ((vocab + sliceRows - 1) / sliceRows);
    this.slices = new NDArray[count];
    this.biasSlices = bias == null ? null : new NDArray[count];
    for (int j = 0; j < count; j++) {
      String range = j * sliceRows + ":" + Math.min(vocab, (j + 1) * sliceRows);
      slices[j] = output.get(range);
      if (bias != null) {
        biasSlices[j] = bias.get(range);
      }
    }
    this.scale = scale;
    this.sliceRows = sliceRows;
    this.rowsPerStep = rowsPerStep;
    this.precision = precision;
  }

  /**
   * @return the rows of the output matrix per slice
   */
  long sliceRows() {
    return sliceRows;
  }

  /**
   * log p(target) for each row of {@code x}: the target's logit minus the log-sum-exp over all V
   * logits, both from the same float32 logits, the sum over vocabulary slices taken in double (so
   * log p never exceeds 0).
   *
   * @param m scope of every intermediate
   * @param x (N, C) after the final norm
   * @param targets (N) token ids
   * @return (N) log-probabilities
   */
  float[] logProbs(NDManager m, NDArray x, long[] targets) {
    int n = targets.length;
    float[] lp = new float[n];
    for (int r0 = 0; r0 < n; r0 += rowsPerStep) {
      int r1 = (int) Math.min(n, r0 + rowsPerStep);
      try (NDManager cm = m.newSubManager()) {
        NDArray xs = x.get(r0 + ":" + r1); // (n, C)
        cm.tempAttachAll(xs);
        float[] targetLogit = new float[r1 - r0];
        double[] maxes = new double[r1 - r0];
        double[][] lse = new double[slices.length][];
        for (int j = 0; j < slices.length; j++) {
          try (NDManager sm = cm.newSubManager()) {
            sm.tempAttachAll(xs);
            NDArray logits =
                Ops.linear(
                    xs,
                    slices[j],
                    biasSlices == null ? null : biasSlices[j],
                    precision); // (n, slice)
            if (scale != 1.0) {
              logits = logits.muli(scale);
            }
            // the logit of each target inside this slice, from these very logits
            long v0 = j * sliceRows;
            long width = logits.getShape().get(1);
            long[] at = new long[r1 - r0];
            for (int i = 0; i < at.length; i++) {
              at[i] = Math.min(width - 1, Math.max(0, targets[r0 + i] - v0));
            }
            float[] picked = logits.gather(sm.create(at).reshape(at.length, 1), -1).toFloatArray();
            for (int i = 0; i < at.length; i++) {
              if (targets[r0 + i] >= v0 && targets[r0 + i] < v0 + width) {
                targetLogit[i] = picked[i];
              }
            }
            // log-sum-exp of the slice: max + log sum exp(logit - max), the exps as log-softmax
            // takes them. Each exponent is held at or above MIN_EXPONENT: a term that small cannot
            // move a sum that is at least 1 (the max's own term) in float32, and libtorch's exp
            // runs about ten times slower where its result is subnormal.
            NDArray max = logits.max(new int[] {-1}, true); // (n, 1)
            NDArray shifted = logits.subi(max).maximum(MIN_EXPONENT);
            logits.close();
            NDArray terms = shifted.exp();
            shifted.close();
            float[] sum = terms.sum(new int[] {-1}).toFloatArray();
            float[] top = max.toFloatArray();
            lse[j] = new double[r1 - r0];
            for (int i = 0; i < lse[j].length; i++) {
              lse[j][i] = top[i] + Math.log(sum[i]);
              maxes[i] = j == 0 ? lse[j][i] : Math.max(maxes[i], lse[j][i]);
            }
          }
        }
        // log sum_V exp(logit) = max + log sum_slices exp(lse_slice - max), in double
        for (int i = 0; i < r1 - r0; i++) {
          double sum = 0;
          for (double[] l : lse) {
            sum += Math.exp(l[i] - maxes[i]);
          }
          lp[r0 + i] = (float) (targetLogit[i] - (maxes[i] + Math.log(sum)));
        }
      }
    }
    return lp;
  }
}
