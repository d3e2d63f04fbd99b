package io.olmoppl.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * The gated MLP, down(silu(gate(x)) * up(x)), as transformers' {@code OlmoMLP}; up and gate come
 * from one fused [up | gate] matrix (hf_olmo's own layout). It runs one slice of the intermediate
 * axis at a time over all its rows: each weight slice is then read and packed by the matmul once
 * per call, and down's partial products are summed over the slices.
 */
final class Mlp implements FeedForward {
  /**
   * Views of one slice of a layer's MLP along the intermediate axis: rows of up and of gate (with
   * their biases) and the matching columns of down.
   */
  private record Slice(NDArray up, NDArray upBias, NDArray gate, NDArray gateBias, NDArray down) {}

  private final Slice[] slices;
  private final NDArray downBias; // (C) or null
  private final Precision precision;

  /**
   * Cuts the layer's MLP into slices of the intermediate axis; views, which share the weights'
   * storage, so they must be made before the weights' manager is capped.
   *
   * @param intermediate I
   * @param width the slice width (the last slice may be narrower)
   */
  Mlp(OlmoWeights.LayerWeights l, int intermediate, int width, Precision precision) {
    this(l.upGate(), l.upGateBias(), l.down(), l.downBias(), intermediate, width, precision);
  }

  /**
   * The same from the matrices themselves (one expert of a mixture of experts).
   *
   * @param upGate (2*I, C) [up | gate] rows
   * @param b its bias, or null
   * @param down (C, I)
   * @param downBias (C) or null
   */
  Mlp(
      NDArray upGate,
      NDArray b,
      NDArray down,
      NDArray downBias,
      int intermediate,
      int width,
      Precision precision) {
    int count = (intermediate + width - 1) / width;
    this.slices = new Slice[count];
    for (int j = 0; j < count; j++) {
      int a = j * width;
      int e = Math.min(intermediate, a + width);
      slices[j] =
          new Slice(
              upGate.get(a + ":" + e),
              b == null ? null : b.get(a + ":" + e),
              upGate.get((intermediate + a) + ":" + (intermediate + e)),
              b == null ? null : b.get((intermediate + a) + ":" + (intermediate + e)),
              down.get(":, " + a + ":" + e));
    }
    this.downBias = downBias;
    this.precision = precision;
  }

  @Override
  public NDArray forward(NDArray x) {
    NDManager m = x.getManager();
    NDArray f = null; // (N, C)
    for (Slice sl : slices) {
      try (NDManager sm = m.newSubManager()) { // this slice's activations are freed with it
        sm.tempAttachAll(x);
        NDArray u = Ops.linear(x, sl.up(), sl.upBias(), precision); // (N, slice)
        NDArray g = Ops.linear(x, sl.gate(), sl.gateBias(), precision);
        NDArray part = Ops.linear(Ops.swiglu(u, g), sl.down(), null, precision); // (N, C)
        if (f == null) {
          f = part;
          f.attach(m);
        } else {
          f.addi(part);
        }
      }
    }
    if (downBias != null) {
      f.addi(downBias);
    }
    return f;
  }
}
