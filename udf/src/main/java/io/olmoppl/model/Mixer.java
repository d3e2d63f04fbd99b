package io.olmoppl.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.olmoppl.checkpoint.OlmoConfig;

/**
 * The part of a layer that mixes information across positions: causal self-attention today ({@link
 * Attention}); another kind (a sliding window, say) is another class, chosen per layer where {@link
 * OlmoModel} builds its layers.
 */
interface Mixer {
  /**
   * @param x (B, T, C) the sublayer's input, not modified
   * @param pass what every layer of the pass shares
   * @return (B, T, C) the sublayer's output, before the residual add
   */
  NDArray forward(NDArray x, Context pass);

  /**
   * What every layer of one pass shares: the shape, each position's rotary rows and the causal
   * query blocks.
   *
   * @param rows B
   * @param length T
   * @param cos (B, T, 1, D) each position's cosines, broadcast over the heads
   * @param sin (B, T, 1, D) each position's signed sines likewise
   * @param causal the query blocks of causal attention within each window
   * @param segmentStart per row and position, where its window begins (for masks of other kinds)
   */
  record Context(
      int rows,
      int length,
      NDArray cos,
      NDArray sin,
      Ops.CausalBlocks causal,
      int[][] segmentStart) {
    /** Builds the rotary rows and the causal blocks of a pass, in {@code m}. */
    static Context of(NDManager m, Pass.Inputs in, int b, int t, OlmoConfig c, MemoryBudget mb) {
      int d = c.headDim();
      NDArray positions = m.create(in.positions(), new Shape(b, t)); // (B, T)
      NDArray[] rope = Ops.ropeTables(m, in.longest(), d, c.ropeTheta()); // (L, D), L the longest
      NDArray cos = Ops.gatherRows(positions, rope[0]).reshape(b, t, 1, d);
      NDArray sin = Ops.gatherRows(positions, rope[1]).reshape(b, t, 1, d);
      int queryBlock = mb.queryBlock(b, c.numAttentionHeads(), t);
      Ops.CausalBlocks causal = Ops.causalBlocks(m, in.segmentStart(), queryBlock);
      return new Context(b, t, cos, sin, causal, in.segmentStart());
    }
  }
}
