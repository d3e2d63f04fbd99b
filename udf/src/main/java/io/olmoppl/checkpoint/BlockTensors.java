package io.olmoppl.checkpoint;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The stored tensors of a layout, as {@link CheckpointLayout} names and shapes them for a config:
 * one tensor, one block's weights, one expert of a mixture-of-experts MLP.
 */
public final class BlockTensors {
  private BlockTensors() {}

  /** A stored tensor and the shape the config implies for it. */
  public record Stored(String name, long... shape) {
    @Override
    public String toString() {
      return name + " " + Arrays.toString(shape);
    }
  }

  /**
   * One block's weights as stored tensors. A list holds the tensors concatenated by rows into one
   * weight (empty: the weight is absent): {@code qkv} is {@code [Q | K | V]} rows, {@code upGate}
   * is {@code [up | gate]} rows (hf_olmo stores them fused; the transformers layouts store the
   * parts). The attention and MLP norms come before their sub-layer, or after it when the config
   * says {@code normAfter} (OLMo-2). A mixture-of-experts block has a {@code router} (E, C) and
   * {@code experts} in place of {@code upGate} and {@code down} (empty in a dense block).
   */
  public record Block(
      List<Stored> qkv,
      List<Stored> qkvBias,
      List<Stored> out,
      List<Stored> outBias,
      List<Stored> upGate,
      List<Stored> upGateBias,
      List<Stored> down,
      List<Stored> downBias,
      List<Stored> attnNormWeight,
      List<Stored> attnNormBias,
      List<Stored> ffNormWeight,
      List<Stored> ffNormBias,
      List<Stored> qNormWeight,
      List<Stored> kNormWeight,
      List<Stored> router,
      List<Expert> experts) {

    /**
     * @return every stored tensor of the block, in the order above
     */
    public List<Stored> all() {
      List<Stored> all = new ArrayList<>();
      for (List<Stored> w :
          List.of(
              qkv,
              qkvBias,
              out,
              outBias,
              upGate,
              upGateBias,
              down,
              downBias,
              attnNormWeight,
              attnNormBias,
              ffNormWeight,
              ffNormBias,
              qNormWeight,
              kNormWeight,
              router)) {
        all.addAll(w);
      }
      experts.forEach(e -> all.addAll(e.all()));
      return all;
    }
  }

  /**
   * One expert of a mixture-of-experts MLP: {@code upGate} is {@code [up | gate]} rows, as a dense
   * block's.
   */
  public record Expert(List<Stored> upGate, List<Stored> down) {
    /**
     * @return the expert's tensors
     */
    public List<Stored> all() {
      List<Stored> all = new ArrayList<>(upGate);
      all.addAll(down);
      return all;
    }
  }

  static List<Stored> one(String name, long... shape) {
    return List.of(new Stored(name, shape));
  }

  static List<Stored> none() {
    return List.of();
  }
}
