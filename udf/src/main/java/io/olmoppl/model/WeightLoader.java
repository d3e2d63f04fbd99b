package io.olmoppl.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.olmoppl.checkpoint.BlockTensors.Block;
import io.olmoppl.checkpoint.BlockTensors.Stored;
import io.olmoppl.checkpoint.CheckpointLayout;
import io.olmoppl.checkpoint.DType;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.checkpoint.OlmoConfig.NormType;
import io.olmoppl.checkpoint.SafetensorsFile.TensorInfo;
import io.olmoppl.checkpoint.WeightSource;
import io.olmoppl.model.OlmoWeights.ExpertWeights;
import io.olmoppl.model.OlmoWeights.LayerWeights;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * Turns stored tensors into the model's engine arrays, in the weights' manager (before it is
 * capped): which tensors make which weight is the {@link CheckpointLayout}'s; this class reads
 * them, widens F16/BF16 exactly to float32, concatenates fused parts by rows and keeps projection
 * matrices in the matmul precision. Its product is an {@link OlmoWeights}.
 */
final class WeightLoader {
  private static final int BF16_BLOCK = 1 << 24; // elements widened per direct-buffer round trip
  private final WeightSource src;
  private final NDManager m;
  private final Precision precision;
  private ByteBuffer scratch;

  WeightLoader(WeightSource src, NDManager m, Precision precision) {
    this.src = src;
    this.m = m;
    this.precision = precision;
  }

  /**
   * Loads every weight of {@code c}.
   *
   * @param tied whether the output projection is the embedding tensor itself
   * @param embName the embedding tensor
   * @param outName the output matrix (ignored when tied)
   */
  OlmoWeights load(OlmoConfig c, boolean tied, String embName, String outName) {
    CheckpointLayout layout = c.layout();
    NDArray embedding = matrix(embName);
    NDArray output = tied ? embedding : matrix(outName);
    Stored bias = layout.loadedOutputBias(c, tied);
    NDArray outputBias = bias == null ? null : vector(bias.name());
    LayerWeights[] layers = new LayerWeights[c.numHiddenLayers()];
    for (int i = 0; i < layers.length; i++) {
      Block b = layout.block(c, i);
      layers[i] =
          new LayerWeights(
              matrix(b.qkv()),
              vector(b.qkvBias()),
              matrix(b.out()),
              vector(b.outBias()),
              matrix(b.upGate()),
              vector(b.upGateBias()),
              matrix(b.down()),
              vector(b.downBias()),
              vector(b.attnNormWeight()),
              vector(b.attnNormBias()),
              vector(b.ffNormWeight()),
              vector(b.ffNormBias()),
              vector(b.qNormWeight()),
              vector(b.kNormWeight()),
              matrix(b.router()),
              b.experts().stream()
                  .map(e -> new ExpertWeights(matrix(e.upGate()), matrix(e.down())))
                  .toArray(ExpertWeights[]::new));
    }
    boolean layerNorm = c.normType() != NormType.RMS_NORM;
    return new OlmoWeights(
        embedding,
        output,
        outputBias,
        layers,
        vector(layout.finalNormWeight(c)),
        vector(layout.finalNormBias(c)),
        layerNorm ? m.ones(new Shape(c.hiddenSize())) : null,
        layerNorm ? m.zeros(new Shape(c.hiddenSize())) : null);
  }

  /**
   * A projection matrix from its row-concatenated parts, in the matmul precision; null when absent.
   */
  private NDArray matrix(List<Stored> parts) {
    return parts.isEmpty() ? null : inMatmulPrecision(fused(parts));
  }

  /** A norm weight or bias from its concatenated parts, float32; null when absent. */
  private NDArray vector(List<Stored> parts) {
    return parts.isEmpty() ? null : fused(parts);
  }

  private NDArray vector(Stored s) {
    return s == null ? null : vector(s.name());
  }

  private NDArray fused(List<Stored> parts) {
    if (parts.size() == 1) {
      return fp32(parts.get(0).name());
    }
    NDList arrays = new NDList();
    for (Stored p : parts) {
      arrays.add(fp32(p.name()));
    }
    NDArray fused = NDArrays.concat(arrays, 0);
    arrays.close();
    return fused;
  }

  /** A projection matrix, in the matmul precision. */
  private NDArray matrix(String name) {
    return inMatmulPrecision(fp32(name));
  }

  /** A norm weight or bias: always float32. */
  private NDArray vector(String name) {
    return fp32(name);
  }

  /**
   * fp16 mode keeps projection matrices in fp16 (half the device memory); the fp32 copy is freed.
   */
  private NDArray inMatmulPrecision(NDArray a) {
    if (precision != Precision.FP16) {
      return a;
    }
    NDArray h = a.toType(DataType.FLOAT16, true);
    a.close();
    return h;
  }

  /** Reads a tensor as float32 on the device; stored F16/BF16 values are widened exactly. */
  NDArray fp32(String name) {
    TensorInfo info = src.info(name);
    long[] shape = info.shape();
    long rowElems = shape.length == 0 ? 1 : info.numel() / Math.max(1, shape[0]);
    NDList parts = new NDList();
    List<ByteBuffer> chunks = src.chunks(name);
    try {
      for (ByteBuffer chunk : chunks) {
        long elems = chunk.remaining() / info.dtype().bytes();
        long[] cs = shape.clone();
        if (cs.length > 0) {
          cs[0] = rowElems == 0 ? 0 : elems / rowElems;
        }
        parts.add(chunkToFloat(chunk.order(ByteOrder.LITTLE_ENDIAN), info.dtype(), new Shape(cs)));
      }
    } finally {
      src.release(chunks); // every part is an engine-owned copy: the stored bytes can go
    }
    if (parts.size() == 1) {
      return parts.get(0);
    }
    NDArray all = NDArrays.concat(parts, 0);
    parts.close();
    return all;
  }

  private NDArray chunkToFloat(ByteBuffer chunk, DType dtype, Shape shape) {
    if (dtype == DType.BF16) {
      // DJL's PyTorch JNI aborts the JVM on any BF16 tensor: widen in Java (bf16 = upper half of a
      // float32).
      return bf16ToFloat(chunk, shape);
    }
    ByteBuffer direct = chunk;
    if (!chunk.isDirect()) {
      direct = ByteBuffer.allocateDirect(chunk.remaining()).order(ByteOrder.LITTLE_ENDIAN);
      direct.put(chunk.duplicate()).flip();
    }
    // a view over the (read-only) mapping, then an engine-owned float32 copy, so the mapping can go
    NDArray view =
        m.create(direct, shape, dtype == DType.F32 ? DataType.FLOAT32 : DataType.FLOAT16);
    NDArray owned = dtype == DType.F32 ? view.duplicate() : view.toType(DataType.FLOAT32, true);
    view.close();
    return owned;
  }

  private NDArray bf16ToFloat(ByteBuffer chunk, Shape shape) {
    long n = shape.size();
    if (scratch == null) {
      scratch = ByteBuffer.allocateDirect(BF16_BLOCK * 4).order(ByteOrder.LITTLE_ENDIAN);
    }
    NDList blocks = new NDList();
    int pos = chunk.position();
    for (long done = 0; done < n; ) {
      int len = (int) Math.min(BF16_BLOCK, n - done);
      scratch.clear();
      for (int i = 0; i < len; i++) {
        scratch.putInt((chunk.getShort(pos + 2 * i) & 0xFFFF) << 16);
      }
      scratch.flip();
      NDArray view = m.create(scratch, new Shape(len), DataType.FLOAT32);
      blocks.add(view.duplicate());
      view.close();
      pos += 2 * len;
      done += len;
    }
    NDArray flat = blocks.size() == 1 ? blocks.get(0) : NDArrays.concat(blocks, 0);
    NDArray shaped =
        flat.reshape(shape); // a view: torch keeps the storage alive after the flat handle closes
    if (blocks.size() > 1) {
      flat.close();
    }
    blocks.close();
    return shaped;
  }
}
