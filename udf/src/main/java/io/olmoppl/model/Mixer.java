package io.olmoppl.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.olmoppl.checkpoint.AttentionKind;
import io.olmoppl.checkpoint.AttentionSpec;
import io.olmoppl.checkpoint.OlmoConfig;

/**
 * The part of a layer that mixes information across positions: causal self-attention ({@link
 * Attention}), over all earlier keys of the window or a sliding window of them, as the layer's
 * {@link AttentionKind} says; another kind of mixer is another class, chosen per layer where {@link
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
   * What every layer of one pass shares: the shape and, per attention kind the model has, each
   * position's rotary rows and the query blocks.
   *
   * @param rows B
   * @param length T
   * @param full the tables of full-attention layers
   * @param sliding the tables of sliding-window layers, or null when no layer slides
   * @param segmentStart per row and position, where its window begins (for masks of other kinds)
   */
  record Context(int rows, int length, Tables full, Tables sliding, int[][] segmentStart) {

    /**
     * One attention kind's share of a pass.
     *
     * @param cos (B, T, 1, D) each position's cosines, broadcast over the heads
     * @param sin (B, T, 1, D) each position's signed sines likewise
     * @param blocks the query blocks and the keys each reaches
     */
    record Tables(NDArray cos, NDArray sin, Ops.CausalBlocks blocks) {}

    /**
     * @return the tables of layers of kind {@code k}
     */
    Tables of(AttentionKind k) {
      return k == AttentionKind.SLIDING ? sliding : full;
    }

    /** Builds the rotary rows and the query blocks of a pass, per attention kind, in {@code m}. */
    static Context of(NDManager m, Pass.Inputs in, int b, int t, OlmoConfig c, MemoryBudget mb) {
      AttentionSpec a = c.attention();
      NDArray positions = m.create(in.positions(), new Shape(b, t)); // (B, T)
      Tables full = tables(m, in, positions, b, t, c, mb, AttentionKind.FULL);
      Tables sliding =
          a.count(AttentionKind.SLIDING) == 0
              ? null
              : tables(m, in, positions, b, t, c, mb, AttentionKind.SLIDING);
      return new Context(b, t, full, sliding, in.segmentStart());
    }

    private static Tables tables(
        NDManager m,
        Pass.Inputs in,
        NDArray positions,
        int b,
        int t,
        OlmoConfig c,
        MemoryBudget mb,
        AttentionKind kind) {
      int d = c.headDim();
      AttentionSpec a = c.attention();
      // (L, D), L the longest window
      NDArray[] rope = Ops.ropeTables(m, in.longest(), d, a.rope(kind));
      NDArray cos = Ops.gatherRows(positions, rope[0]).reshape(b, t, 1, d);
      NDArray sin = Ops.gatherRows(positions, rope[1]).reshape(b, t, 1, d);
      int reach = a.reach(kind);
      int queryBlock = mb.queryBlock(b, c.numAttentionHeads(), Math.min(t, reach));
      return new Tables(cos, sin, Ops.causalBlocks(m, in.segmentStart(), queryBlock, reach));
    }
  }
}
