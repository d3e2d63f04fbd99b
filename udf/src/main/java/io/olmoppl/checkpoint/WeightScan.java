package io.olmoppl.checkpoint;

import io.olmoppl.checkpoint.SafetensorsFile.TensorInfo;
import java.nio.ByteBuffer;
import java.util.List;

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
    for (String name : c.loadedTensors()) {
      List<ByteBuffer> chunks = c.chunks(name);
      try {
        requireFinite(c, name, chunks, setting);
      } finally {
        c.release(chunks);
      }
    }
  }

  private static void requireFinite(
      Checkpoint c, String name, List<ByteBuffer> chunks, String setting) {
    TensorInfo info = c.info(name);
    int step = info.dtype().bytes();
    long index = 0;
    for (ByteBuffer b : chunks) {
      for (int p = 0; p + step <= b.capacity(); p += step, index++) {
        float v = DType.widen(info.dtype(), b, p);
        if (!Float.isFinite(v)) {
          throw new CheckpointException(
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
    }
  }
}
