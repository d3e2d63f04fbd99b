package io.olmoppl.job.demo;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.Activation;
import ai.djl.training.optimizer.Optimizer;
import io.olmoppl.checkpoint.BlockTensors.Block;
import io.olmoppl.checkpoint.BlockTensors.Stored;
import io.olmoppl.checkpoint.CheckpointLayout;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.model.Ops;
import io.olmoppl.model.Precision;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The demo model's trainable tensors under their checkpoint names (the embedding holds active rows
 * only) and its training forward pass (DJL autograd), for {@link DemoTrainer}.
 */
final class DemoWeights {
  private final OlmoConfig config;
  private final Map<String, NDArray> byName = new LinkedHashMap<>();
  private final NDArray embedding; // (A, C), A = active vocabulary
  private final NDArray[][]
      blocks; // per block: att_proj (3C, C), attn_out (C, C), ff_proj (2I, C), ff_out (C, I)

  DemoWeights(NDManager m, OlmoConfig config, int activeRows, SplittableRandom rnd) {
    this.config = config;
    int c = config.hiddenSize();
    int i = config.intermediateSize();
    int layers = config.numHiddenLayers();
    double outStd =
        0.02 / StrictMath.sqrt(2.0 * layers); // GPT-2 style scaling of the residual projections
    embedding = param(m, CheckpointLayout.HF_OLMO.embedding(), rnd, 0.02, activeRows, c);
    blocks = new NDArray[layers][];
    for (int l = 0; l < layers; l++) {
      // the layout's names; hf_olmo stores each of these weights as one tensor
      Block names = CheckpointLayout.HF_OLMO.block(config, l);
      blocks[l] =
          new NDArray[] {
            param(m, only(names.qkv()), rnd, 0.02, 3 * c, c),
            param(m, only(names.out()), rnd, outStd, c, c),
            param(m, only(names.upGate()), rnd, 0.02, 2 * i, c),
            param(m, only(names.down()), rnd, outStd, c, i)
          };
    }
  }

  private static String only(List<Stored> weight) {
    if (weight.size() != 1) {
      throw new IllegalStateException("hf_olmo stores " + weight + " as more than one tensor");
    }
    return weight.get(0).name();
  }

  private NDArray param(
      NDManager m, String name, SplittableRandom rnd, double std, int rows, int cols) {
    float[] v = new float[rows * cols];
    for (int k = 0; k < v.length; k++) {
      // Box-Muller (SplittableRandom has no nextGaussian on Java 17), in StrictMath: Math may
      // round differently
      // once the JIT compiles this loop, and when that happens depends on the machine's load
      v[k] =
          (float)
              (std
                  * StrictMath.sqrt(-2 * StrictMath.log(1.0 - rnd.nextDouble()))
                  * StrictMath.cos(2 * Math.PI * rnd.nextDouble()));
    }
    // an engine-owned copy: create() may wrap the Java buffer, whose address (and alignment,
    // which picks the
    // BLAS kernel and so the rounding) differs from run to run
    NDArray view = m.create(v, new Shape(rows, cols));
    NDArray a = view.duplicate();
    view.close();
    a.setRequiresGradient(true);
    byName.put(name, a);
    return a;
  }

  /**
   * Log-probability of every target over the full logit width.
   *
   * @param x (B, T) compact input ids
   * @param y (B*T, 1) compact targets
   * @param unseenLogit ln(number of zero embedding rows): their summed share of the partition
   *     function
   * @return (B*T, 1) log p(y | x)
   */
  NDArray logProbs(NDManager m, NDArray x, NDArray y, float unseenLogit) {
    long b = x.getShape().get(0);
    int t = (int) x.getShape().get(1);
    int c = config.hiddenSize();
    int h = config.numAttentionHeads();
    int d = config.headDim();
    double eps = config.normEps();
    NDArray[] rope = Ops.ropeTables(m, t, d, config.ropeTheta()); // (T, D): cos, signed sin
    NDArray ones = m.ones(new Shape(c)); // the weightless LayerNorm's scale and shift
    NDArray zeros = m.zeros(new Shape(c));
    NDArray hs =
        x.getNDArrayInternal().embedding(x, embedding, SparseFormat.DENSE).head(); // (B, T, C)
    Ops.CausalBlocks causal =
        Ops.causalBlocks(m, new int[(int) b][(int) t], (int) t); // one segment per row
    for (NDArray[] blk : blocks) {
      NDArray qkv =
          Ops.linear(
              Ops.layerNorm(hs, ones, zeros, eps), blk[0], null, Precision.FP32); // (B, T, 3C)
      NDList parts = qkv.split(new long[] {c, 2L * c}, 2);
      NDArray q =
          Ops.rope(parts.get(0).reshape(b, t, h, d).transpose(0, 2, 1, 3), rope[0], rope[1]);
      NDArray k =
          Ops.rope(parts.get(1).reshape(b, t, h, d).transpose(0, 2, 1, 3), rope[0], rope[1]);
      NDArray v = parts.get(2).reshape(b, t, h, d).transpose(0, 2, 1, 3); // (B, H, T, D)
      NDArray att =
          Ops.attention(q, k, v, Precision.FP32, causal)
              .reshape(b, t, c); // (B, T, H, D) -> (B, T, C)
      hs = hs.add(Ops.linear(att, blk[1], null, Precision.FP32));
      NDList ug =
          Ops.linear(Ops.layerNorm(hs, ones, zeros, eps), blk[2], null, Precision.FP32).split(2, 2);
      NDArray up = ug.get(0);
      NDArray gate = ug.get(1);
      // silu(gate) * up as Ops.swiglu, but out of place: autograd needs the sigmoid that swiglu
      // overwrites
      hs =
          hs.add(
              Ops.linear(gate.mul(Activation.sigmoid(gate)).mul(up), blk[3], null, Precision.FP32));
    }
    NDArray flat = Ops.layerNorm(hs, ones, zeros, eps).reshape(b * t, c); // (N, C)
    NDArray logits = Ops.linear(flat, embedding, null, Precision.FP32); // (N, A), tied output
    NDArray all =
        NDArrays.concat(
            new NDList(logits, m.full(new Shape(b * t, 1), unseenLogit)), 1); // (N, A+1)
    return all.logSoftmax(-1).gather(y, -1);
  }

  /** One Adam step on every tensor, then clears the gradients (libtorch accumulates them). */
  void update(Optimizer adam) {
    for (Map.Entry<String, NDArray> e : byName.entrySet()) {
      try (NDArray g = e.getValue().getGradient()) {
        adam.update(e.getKey(), e.getValue(), g);
        g.subi(g);
      }
    }
  }

  Map<String, float[]> values() {
    Map<String, float[]> v = new LinkedHashMap<>();
    byName.forEach((k, a) -> v.put(k, a.toFloatArray()));
    return v;
  }
}
