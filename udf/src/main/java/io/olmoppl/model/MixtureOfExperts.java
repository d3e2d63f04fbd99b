package io.olmoppl.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import io.olmoppl.checkpoint.Experts;
import io.olmoppl.checkpoint.OlmoConfig;
import java.util.Arrays;

/**
 * A mixture-of-experts MLP, as transformers' {@code OlmoeSparseMoeBlock} (OLMoE, FlexOlmo): a
 * router scores every expert for each row, softmax over ALL experts in float32, the top k are kept
 * (ties broken by {@code torch.topk} itself) with their probabilities as weights, divided by their
 * sum only when the config says {@code norm_topk_prob}; the output is the weighted sum of those
 * experts' gated MLPs.
 *
 * <p>Each expert runs once per call over the rows routed to it: their rows are gathered, its matmul
 * chain runs over them (an {@link Mlp}, sliced as the dense one), and the weighted outputs are
 * added into the result at those rows, expert by expert in increasing index as transformers' {@code
 * index_add_} does. Rows never meet each other, so a row's output depends on no other row (a
 * document's score on no companion) beyond floating-point summation order. The caller bounds the
 * rows per call as for the dense MLP ({@link MemoryBudget#mlpRows}): an expert's activations are at
 * most those of the dense MLP over the same rows.
 */
final class MixtureOfExperts implements FeedForward {
  private final NDArray router; // (E, C)
  private final Mlp[] experts;
  private final int topK;
  private final boolean normTopK;
  private final Precision precision;

  /**
   * @param width the slice width each expert's MLP runs in
   */
  MixtureOfExperts(OlmoConfig c, OlmoWeights.LayerWeights w, int width, Precision precision) {
    Experts e = c.experts();
    this.router = w.router();
    this.experts = new Mlp[e.count()];
    for (int i = 0; i < experts.length; i++) {
      OlmoWeights.ExpertWeights x = w.experts()[i];
      experts[i] =
          new Mlp(x.upGate(), null, x.down(), null, c.intermediateSize(), width, precision);
    }
    this.topK = e.topK();
    this.normTopK = e.normTopkProb();
    this.precision = precision;
  }

  /**
   * The experts each row uses and their weights.
   *
   * @param k experts per row
   * @param experts {@code experts[r * k + j]}: row r's j-th expert, by decreasing probability
   * @param weights the matching weights
   */
  record Routing(int k, int[] experts, float[] weights) {}

  /**
   * Routes rows as transformers' {@code OlmoeTopKRouter}: logits x W^T, softmax over every expert
   * in float32, top k by {@code torch.topk}, optionally divided by their sum.
   *
   * @param x (N, C)
   * @param router (E, C)
   */
  static Routing route(NDArray x, NDArray router, int k, boolean norm, Precision p) {
    try (NDManager sm = x.getManager().newSubManager()) {
      sm.tempAttachAll(x); // every temporary here is freed with sm
      NDArray probs = Ops.linear(x, router, null, p).softmax(-1); // (N, E), float32
      NDList top = probs.topK(k, -1, true, true);
      NDArray w = top.get(0); // (N, k)
      if (norm) {
        w = w.div(w.sum(new int[] {-1}, true));
      }
      long[] idx = top.get(1).toLongArray();
      int[] experts = new int[idx.length];
      for (int i = 0; i < idx.length; i++) {
        experts[i] = Math.toIntExact(idx[i]);
      }
      return new Routing(k, experts, w.toFloatArray());
    }
  }

  @Override
  public NDArray forward(NDArray x) {
    NDManager m = x.getManager();
    Routing r = route(x, router, topK, normTopK, precision);
    // the routed (row, weight) pairs grouped by expert, rows in increasing order within an expert
    int e = experts.length;
    int[] start = new int[e + 1];
    for (int ex : r.experts()) {
      start[ex + 1]++;
    }
    for (int i = 0; i < e; i++) {
      start[i + 1] += start[i];
    }
    long[] rows = new long[r.experts().length];
    float[] weights = new float[rows.length];
    int[] next = Arrays.copyOf(start, e);
    for (int i = 0; i < rows.length; i++) {
      int at = next[r.experts()[i]]++;
      rows[at] = i / r.k();
      weights[at] = r.weights()[i];
    }
    NDArray out = m.zeros(x.getShape()); // (N, C) float32
    for (int i = 0; i < e; i++) {
      int n = start[i + 1] - start[i];
      if (n == 0) {
        continue;
      }
      try (NDManager em = m.newSubManager()) { // this expert's activations are freed with it
        em.tempAttachAll(out);
        NDArray idx = em.create(Arrays.copyOfRange(rows, start[i], start[i + 1])); // (n)
        NDArray y = experts[i].forward(Ops.gatherRows(idx, x)); // (n, C)
        y.muli(em.create(Arrays.copyOfRange(weights, start[i], start[i + 1]), new Shape(n, 1)));
        NDIndex at = new NDIndex("{}", idx); // the rows are distinct: a put adds each once
        out.set(at, out.get(at).addi(y));
      }
    }
    return out;
  }
}
