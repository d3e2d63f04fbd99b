package io.olmoppl.spark;

import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.Manifest;
import io.olmoppl.checkpoint.SafetensorsFile.TensorInfo;
import io.olmoppl.checkpoint.WeightSource;
import java.io.Serializable;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;

/**
 * The weights broadcast by the driver in their stored dtype: each distinct tensor once (the tied
 * embedding/output matrix is one entry serving both roles), cut into row-aligned blocks so that no
 * broadcast value or Java array comes near 2 GB. Executors read the blocks as a {@link
 * WeightSource}; BF16 is widened there.
 */
public final class WeightsBroadcast implements WeightSource, Serializable {
  private static final long serialVersionUID = 1L;

  /** Largest broadcast block (a Java array and a broadcast value must stay under 2 GB). */
  static final long BLOCK_BYTES_DEFAULT = 256L << 20;

  private final Map<String, TensorInfo> infos;
  private final Map<String, List<Broadcast<byte[]>>> blocks;
  private final long bytes;

  private WeightsBroadcast(
      Map<String, TensorInfo> infos, Map<String, List<Broadcast<byte[]>>> blocks, long bytes) {
    this.infos = infos;
    this.blocks = blocks;
    this.bytes = bytes;
  }

  /**
   * Reads the distinct tensors of a validated checkpoint once on the driver and broadcasts them.
   *
   * @param blockBytes largest block; rounded down to whole rows
   */
  public static WeightsBroadcast create(
      JavaSparkContext jsc, Checkpoint ckpt, Manifest manifest, long blockBytes) {
    Map<String, List<Broadcast<byte[]>>> blocks = new LinkedHashMap<>();
    long total = 0;
    for (Map.Entry<String, TensorInfo> e : manifest.tensors().entrySet()) {
      TensorInfo info = e.getValue();
      long rows = info.shape().length == 0 ? 1 : Math.max(1, info.shape()[0]);
      long rowBytes = Math.max(1, info.byteLength() / rows);
      long perBlock = Math.max(rowBytes, blockBytes / rowBytes * rowBytes);
      List<Broadcast<byte[]>> list = new ArrayList<>();
      List<ByteBuffer> chunks = ckpt.chunks(e.getKey());
      try {
        for (ByteBuffer chunk : chunks) {
          ByteBuffer c = chunk.duplicate();
          while (c.hasRemaining()) {
            byte[] b = new byte[(int) Math.min(perBlock, c.remaining())];
            c.get(b);
            list.add(jsc.broadcast(b));
            total += b.length;
          }
        }
      } finally {
        ckpt.release(chunks);
      }
      if (list.isEmpty()) {
        list.add(jsc.broadcast(new byte[0]));
      }
      blocks.put(e.getKey(), list);
    }
    return new WeightsBroadcast(new LinkedHashMap<>(manifest.tensors()), blocks, total);
  }

  @Override
  public TensorInfo info(String name) {
    return infos.get(name);
  }

  @Override
  public List<ByteBuffer> chunks(String name) {
    List<ByteBuffer> out = new ArrayList<>();
    for (Broadcast<byte[]> b : blocks.get(name)) {
      out.add(ByteBuffer.wrap(b.value()).order(ByteOrder.LITTLE_ENDIAN));
    }
    return out;
  }

  /**
   * @return weight bytes broadcast (each distinct tensor once)
   */
  public long bytes() {
    return bytes;
  }

  /**
   * @return number of broadcast blocks
   */
  public int blockCount() {
    return blocks.values().stream().mapToInt(List::size).sum();
  }

  /** Removes the blocks from executors and driver once scoring is done. */
  public void destroy() {
    blocks.values().forEach(l -> l.forEach(b -> b.destroy()));
  }
}
