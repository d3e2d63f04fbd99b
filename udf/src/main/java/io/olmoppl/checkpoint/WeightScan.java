package io.olmoppl.checkpoint;

import io.olmoppl.checkpoint.SafetensorsFile.TensorInfo;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.nio.ShortBuffer;
import java.util.List;
import java.util.function.Predicate;
import java.util.stream.IntStream;

/**
 * Checks that every weight the model loads is finite. A NaN or infinite weight makes every score
 * NaN; found here, on the driver before any scoring, it is an error naming the tensor. Reads each
 * loaded tensor once (memory-mapped).
 */
public final class WeightScan {
  private WeightScan() {}

  /**
   * @param setting the name of the setting that skips this scan, for the message
   * @throws CheckpointException naming the first tensor with a non-finite value, its element index
   *     and the value
   */
  public static void requireFinite(Checkpoint c, String setting) {
    List<String> names = c.loadedTensors();
    // tensors are tested in parallel (reading the mapped pages is most of the time); the first
    // flagged one in order is then read element by element for the message
    boolean[] flagged = new boolean[names.size()];
    IntStream.range(0, names.size())
        .parallel()
        .forEach(
            i -> flagged[i] = withChunks(c, names.get(i), ch -> anyNonFinite(c, names.get(i), ch)));
    for (int i = 0; i < names.size(); i++) {
      if (flagged[i]) {
        String name = names.get(i);
        withChunks(c, name, chunks -> requireFinite(c, name, chunks, setting));
      }
    }
  }

  private static boolean withChunks(Checkpoint c, String name, Predicate<List<ByteBuffer>> test) {
    List<ByteBuffer> chunks = c.chunks(name);
    try {
      return test.test(chunks);
    } finally {
      c.release(chunks);
    }
  }

  private static boolean anyNonFinite(Checkpoint c, String name, List<ByteBuffer> chunks) {
    DType d = c.info(name).dtype();
    return chunks.stream().anyMatch(b -> anyNonFinite(d, b));
  }

  /**
   * @return false: every element is finite
   * @throws CheckpointException naming the tensor's first non-finite element
   */
  private static boolean requireFinite(
      Checkpoint c, String name, List<ByteBuffer> chunks, String setting) {
    TensorInfo info = c.info(name);
    int step = info.dtype().bytes();
    long index = 0;
    for (ByteBuffer b : chunks) {
      for (int p = 0; p + step <= b.capacity(); p += step) {
        float v = DType.widen(info.dtype(), b, p);
        if (!Float.isFinite(v)) {
          throw nonFinite(c, name, info, index + p / step, v, setting);
        }
      }
      index += b.capacity() / step;
    }
    return false;
  }

  /**
   * Elements compared per block: bulk copies out of the mapping, then a loop the JIT vectorizes.
   */
  private static final int BLOCK = 1 << 14;

  /**
   * @return whether an element of {@code b} has an exponent of all ones (infinite or NaN), tested
   *     on the stored bits: (bits &amp; exponent) + the exponent's lowest bit carries into the sign
   *     bit exactly then, so one OR over all elements answers for the buffer
   */
  static boolean anyNonFinite(DType d, ByteBuffer b) {
    ByteBuffer le = b.duplicate().order(ByteOrder.LITTLE_ENDIAN).clear();
    if (d == DType.F32) {
      IntBuffer in = le.asIntBuffer();
      int[] block = new int[Math.min(BLOCK, in.remaining())];
      int acc = 0;
      while (in.hasRemaining()) {
        int n = Math.min(block.length, in.remaining());
        in.get(block, 0, n);
        for (int i = 0; i < n; i++) {
          acc |= (block[i] & 0x7F800000) + 0x00800000;
        }
      }
      return acc < 0;
    }
    int exponent = d == DType.F16 ? 0x7C00 : 0x7F80; // bf16 keeps float32's 8 exponent bits
    int lowest = exponent & -exponent;
    ShortBuffer in = le.asShortBuffer();
    short[] block = new short[Math.min(BLOCK, in.remaining())];
    int acc = 0;
    while (in.hasRemaining()) {
      int n = Math.min(block.length, in.remaining());
      in.get(block, 0, n);
      for (int i = 0; i < n; i++) {
        acc |= (block[i] & exponent) + lowest;
      }
    }
    return (acc & 0x8000) != 0;
  }

  private static CheckpointException nonFinite(
      Checkpoint c, String name, TensorInfo info, long index, float v, String setting) {
    return new CheckpointException(
        "tensor "
            + name
            + " in "
            + c.tensors().get(name).file().path()
            + " holds "
            + v
            + " at element "
            + index
            + " (shape "
            + info.shapeString()
            + "), so every score"
            + " would be NaN. The checkpoint is corrupt or diverged; re-download it or use an earlier one ("
            + setting
            + " skips this check).");
  }
}
