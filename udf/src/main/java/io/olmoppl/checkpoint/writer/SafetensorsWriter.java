package io.olmoppl.checkpoint.writer;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.olmoppl.checkpoint.DType;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Writes safetensors files (random-initialised checkpoints for tests and the developer commands):
 * the 8-byte header length, the JSON header padded to 8 bytes, the tensors in order. {@link
 * io.olmoppl.checkpoint.SafetensorsFile} reads what this writes.
 */
public final class SafetensorsWriter {
  private SafetensorsWriter() {}

  /** One tensor to write: float values, rounded once to {@code dtype}. */
  public record Tensor(String name, DType dtype, long[] shape, float[] values) {}

  /** Writes {@code tensors} to {@code path} in the given order. */
  public static void write(Path path, List<Tensor> tensors) throws IOException {
    JsonObject header = new JsonObject();
    long offset = 0;
    for (Tensor t : tensors) {
      JsonObject o = new JsonObject();
      o.addProperty("dtype", t.dtype().name());
      JsonArray shape = new JsonArray();
      for (long d : t.shape()) {
        shape.add(d);
      }
      o.add("shape", shape);
      long len = (long) t.values().length * t.dtype().bytes();
      JsonArray offs = new JsonArray();
      offs.add(offset);
      offs.add(offset + len);
      o.add("data_offsets", offs);
      header.add(t.name(), o);
      offset += len;
    }
    JsonObject meta = new JsonObject();
    meta.addProperty("format", "pt");
    header.add("__metadata__", meta);
    byte[] hb = header.toString().getBytes(StandardCharsets.UTF_8);
    int pad =
        (8 - hb.length % 8)
            % 8; // the reference writer pads the header with spaces to 8-byte alignment
    try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(path), 1 << 20)) {
      ByteBuffer len =
          ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(hb.length + pad);
      out.write(len.array());
      out.write(hb);
      for (int i = 0; i < pad; i++) {
        out.write(' ');
      }
      for (Tensor t : tensors) {
        ByteBuffer b =
            ByteBuffer.allocate(t.values().length * t.dtype().bytes())
                .order(ByteOrder.LITTLE_ENDIAN);
        for (float v : t.values()) {
          switch (t.dtype()) {
            case F32 -> b.putFloat(v);
            case F16 -> b.putShort(DType.floatToHalf(v));
            case BF16 -> b.putShort(DType.floatToBf16(v));
          }
        }
        out.write(b.array());
      }
    }
  }
}
