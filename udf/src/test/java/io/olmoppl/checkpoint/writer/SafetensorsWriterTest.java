package io.olmoppl.checkpoint.writer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.olmoppl.checkpoint.DType;
import io.olmoppl.checkpoint.SafetensorsFile;
import io.olmoppl.checkpoint.SafetensorsFile.TensorInfo;
import io.olmoppl.checkpoint.writer.SafetensorsWriter.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The writer against the format: the 8-byte little-endian header length, a header padded to 8
 * bytes, the tensors back to back; and against the project's reader, which must see the names,
 * dtypes, shapes and values that were written (values rounded once to the dtype).
 */
class SafetensorsWriterTest {
  @TempDir Path tmp;

  @Test
  void headerLengthIsAMultipleOfEightAndCoversTheHeader() throws IOException {
    Path p = tmp.resolve("a.safetensors");
    SafetensorsWriter.write(
        p, List.of(new Tensor("x", DType.F32, new long[] {3}, new float[] {1, 2, 3})));
    byte[] bytes = Files.readAllBytes(p);
    long len = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    assertEquals(0, len % 8);
    assertEquals(8 + len + 3 * 4, bytes.length);
    assertEquals('{', bytes[8]);
  }

  @Test
  void theReaderSeesWhatWasWrittenInEveryDtype() throws IOException {
    float[] v = {0f, 1f, -2.5f, 1e-3f, 65504f, 3.14159f};
    for (DType d : List.of(DType.F32, DType.F16, DType.BF16)) {
      Path p = tmp.resolve(d + ".safetensors");
      SafetensorsWriter.write(
          p,
          List.of(
              new Tensor("a.weight", d, new long[] {2, 3}, v),
              new Tensor("b.bias", d, new long[] {1}, new float[] {7f})));
      SafetensorsFile f = SafetensorsFile.open(p);
      Map<String, TensorInfo> t = f.tensors();
      assertEquals(2, t.size());
      TensorInfo a = t.get("a.weight");
      assertEquals(d, a.dtype());
      assertArrayEquals(new long[] {2, 3}, a.shape());
      assertArrayEquals(rounded(d, v), read(f, a), d.toString());
      assertArrayEquals(new float[] {7f}, read(f, t.get("b.bias")), d.toString());
    }
  }

  private static float[] rounded(DType d, float[] v) {
    float[] r = new float[v.length];
    for (int i = 0; i < v.length; i++) {
      r[i] =
          switch (d) {
            case F32 -> v[i];
            case F16 -> DType.halfToFloat(DType.floatToHalf(v[i]));
            case BF16 -> Float.intBitsToFloat(DType.floatToBf16(v[i]) << 16);
          };
    }
    return r;
  }

  private static float[] read(SafetensorsFile f, TensorInfo info) {
    List<ByteBuffer> chunks = f.map(info);
    try {
      float[] out = new float[(int) info.numel()];
      int k = 0;
      for (ByteBuffer b : chunks) {
        ByteBuffer le = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        while (le.remaining() >= info.dtype().bytes() && k < out.length) {
          out[k++] =
              switch (info.dtype()) {
                case F32 -> le.getFloat();
                case F16 -> DType.halfToFloat(le.getShort());
                case BF16 -> Float.intBitsToFloat(le.getShort() << 16);
              };
        }
      }
      assertEquals(out.length, k);
      return out;
    } finally {
      SafetensorsFile.unmap(chunks);
    }
  }
}
