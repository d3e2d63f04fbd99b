package io.olmoppl.job.tools;

import io.olmoppl.checkpoint.AttentionKind;
import io.olmoppl.checkpoint.OlmoConfig;

/**
 * Exact forward FLOPs (2 per multiply-add) of the model, free of Spark classes so that the GPU
 * check can use it: the projections and the MLP at every computed position (the last layer's MLP at
 * scored positions only: nothing after it mixes positions), q.k and p.v over the query-key pairs
 * each layer's mask keeps (all earlier keys on full layers, the last W on sliding layers: about T W
 * pairs instead of T^2 / 2), the output projection at scored positions only. A mixture of experts
 * counts its router and the experts a token is routed to (top k), not the others.
 */
public final class ModelFlops {
  private ModelFlops() {}

  /**
   * @return FLOPs of one window of {@code t} input positions of which {@code scored} are scored
   */
  public static double window(OlmoConfig c, long t, long scored) {
    long h = c.hiddenSize();
    long q = c.qDim();
    long mlp = 3L * h * c.intermediateSize(); // up|gate, down
    if (c.experts() != null) { // the router over every expert, then only the top k experts
      mlp = c.experts().count() * h + c.experts().topK() * mlp;
    }
    long perPosition = h * (q + 2L * c.kvDim()) + h * q + mlp; // qkv, out, the MLP
    double attention = 0;
    for (AttentionKind k : c.attention().kinds()) {
      attention += 2.0 * pairs(t, c.attention().reach(k)) * c.headDim() * c.numAttentionHeads();
    }
    return c.numHiddenLayers() * 2.0 * perPosition * t
        - 2.0 * mlp * (t - scored) // the last layer's MLP runs at the scored positions only
        + 2.0 * attention
        + 2.0 * scored * h * c.vocabRows();
  }

  /**
   * @return the query-key pairs of a causal window of {@code t} positions in which a query sees at
   *     most {@code reach} keys (itself included)
   */
  static double pairs(long t, long reach) {
    long w = Math.min(t, reach);
    // queries 0..w-1 see i+1 keys, the rest w each
    return w * (w + 1) / 2.0 + (double) (t - w) * w;
  }

  /**
   * @return FLOPs per token of full windows of {@code t} positions, every position scored
   */
  public static double perToken(OlmoConfig c, long t) {
    return window(c, t, t) / t;
  }
}
