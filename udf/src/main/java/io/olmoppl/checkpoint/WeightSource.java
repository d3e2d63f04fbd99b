package io.olmoppl.checkpoint;

import io.olmoppl.checkpoint.SafetensorsFile.TensorInfo;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * Where the model builder gets tensor bytes: memory-mapped checkpoint files, or blocks received by
 * broadcast. Chunks are little-endian, in stored dtype, row-aligned, and each under 2 GiB.
 */
public interface WeightSource {
  /**
   * @return the header entry of {@code name}
   */
  TensorInfo info(String name);

  /**
   * @return the stored bytes of {@code name}, as row-aligned little-endian chunks
   */
  List<ByteBuffer> chunks(String name);

  /**
   * Called when the caller is done with buffers from {@link #chunks}, and holds no view of them: a
   * source that mapped files unmaps them now (their pages would otherwise stay resident until the
   * garbage collector finds the buffers). The default keeps them.
   */
  default void release(List<ByteBuffer> chunks) {}
}
