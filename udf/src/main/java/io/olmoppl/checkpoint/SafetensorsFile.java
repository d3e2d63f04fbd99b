package io.olmoppl.checkpoint;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.Serializable;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One {@code .safetensors} file: an 8-byte little-endian header length, a JSON header, then raw
 * tensor bytes.
 *
 * <p>Written here because DJL's {@code NDList.decode} reads the whole file onto the heap (fails
 * over 2 GB) and aborts the JVM on BF16. The header is validated before it is trusted (length
 * bounds, offsets inside the file, no overlap, dtype x shape = byte length); tensor bytes are
 * memory-mapped read-only, per tensor, in chunks under 1 GiB. Follows the header checks of Jlama's
 * {@code SafeTensorSupport.readTensorInfoMap}.
 */
public final class SafetensorsFile {
  /** Largest header accepted (the reference implementation's limit is 100 MB). */
  static final long MAX_HEADER_BYTES = 100L << 20;

  /** Largest single mapping handed out; tensors above it come in several row-aligned chunks. */
  static final long MAX_CHUNK_BYTES = 1L << 30;

  /** Where one tensor lies in the file. */
  public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end)
      implements Serializable {
    /**
     * @return number of elements
     */
    public long numel() {
      long n = 1;
      for (long d : shape) {
        n *= d;
      }
      return n;
    }

    /**
     * @return stored byte length
     */
    public long byteLength() {
      return end - begin;
    }

    /**
     * @return the shape as {@code [a, b]}
     */
    public String shapeString() {
      return Arrays.toString(shape);
    }
  }

  private final Path path;
  private final long fileSize;
  private final long dataStart;
  private final Map<String, TensorInfo> tensors;
  private final Map<String, String> metadata;

  private SafetensorsFile(
      Path path,
      long fileSize,
      long dataStart,
      Map<String, TensorInfo> tensors,
      Map<String, String> metadata) {
    this.path = path;
    this.fileSize = fileSize;
    this.dataStart = dataStart;
    this.tensors = tensors;
    this.metadata = metadata;
  }

  /**
   * Reads and validates the header of {@code path}. No tensor data is read.
   *
   * @throws CheckpointException if the file is not a valid safetensors file
   */
  public static SafetensorsFile open(Path path) {
    try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
      long size = ch.size();
      if (size < 8) {
        throw bad(path, "it is " + size + " bytes long, shorter than the 8-byte header length");
      }
      ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      readFully(ch, lenBuf, 0);
      long headerLen = lenBuf.getLong(0);
      if (headerLen < 2 || headerLen > MAX_HEADER_BYTES) {
        throw bad(
            path,
            "its header length field says "
                + headerLen
                + " bytes (allowed: 2 to "
                + MAX_HEADER_BYTES
                + ")");
      }
      if (8 + headerLen > size) {
        throw bad(
            path,
            "its header length field says "
                + headerLen
                + " bytes but the file has only "
                + (size - 8)
                + " bytes after it (the file is truncated)");
      }
      ByteBuffer hb = ByteBuffer.allocate((int) headerLen);
      readFully(ch, hb, 8);
      return parse(path, size, hb.array());
    } catch (IOException e) {
      throw new CheckpointException("cannot read " + path + ": " + e.getMessage(), e);
    }
  }

  /**
   * Validates a header read from {@code path} (no file access; the fuzz test calls it directly).
   *
   * @param size the file's size
   * @param headerBytes the JSON header after the 8-byte length
   */
  static SafetensorsFile parse(Path path, long size, byte[] headerBytes) {
    {
      JsonObject header;
      try {
        header =
            JsonParser.parseString(new String(headerBytes, StandardCharsets.UTF_8))
                .getAsJsonObject();
      } catch (RuntimeException | StackOverflowError e) {
        throw bad(path, "its header is not a JSON object (" + e.getMessage() + ")");
      }
      long dataStart = 8L + headerBytes.length;
      long dataLen = size - dataStart;
      Map<String, TensorInfo> tensors = new LinkedHashMap<>();
      Map<String, String> metadata = new LinkedHashMap<>();
      for (Map.Entry<String, JsonElement> e : header.entrySet()) {
        String name = e.getKey();
        if (name.equals("__metadata__")) {
          if (e.getValue().isJsonObject()) {
            e.getValue()
                .getAsJsonObject()
                .entrySet()
                .forEach(
                    m ->
                        metadata.put(
                            m.getKey(),
                            m.getValue().isJsonPrimitive()
                                ? m.getValue().getAsString()
                                : m.getValue().toString()));
          }
          continue;
        }
        tensors.put(name, parseEntry(path, name, e.getValue(), dataLen));
      }
      checkNoOverlap(path, tensors.values());
      return new SafetensorsFile(
          path, size, dataStart, Collections.unmodifiableMap(tensors), metadata);
    }
  }

  private static TensorInfo parseEntry(Path path, String name, JsonElement el, long dataLen) {
    try {
      JsonObject o = el.getAsJsonObject();
      DType dtype = DType.parse(o.get("dtype").getAsString(), name, path.toString());
      var shapeArr = o.getAsJsonArray("shape");
      long[] shape = new long[shapeArr.size()];
      for (int i = 0; i < shape.length; i++) {
        shape[i] = whole(path, name, shapeArr.get(i));
        if (shape[i] < 0) {
          throw bad(path, "tensor " + name + " has a negative dimension in its shape " + shapeArr);
        }
      }
      var offs = o.getAsJsonArray("data_offsets");
      if (offs == null || offs.size() != 2) {
        throw bad(path, "tensor " + name + " has no [begin, end] data_offsets");
      }
      long begin = whole(path, name, offs.get(0));
      long end = whole(path, name, offs.get(1));
      if (begin < 0 || end < begin || end > dataLen) {
        throw bad(
            path,
            "tensor "
                + name
                + " has data_offsets ["
                + begin
                + ", "
                + end
                + "] outside the "
                + dataLen
                + " data bytes of the file (truncated or corrupt file)");
      }
      TensorInfo info = new TensorInfo(name, dtype, shape, begin, end);
      long expect;
      try {
        long n = 1;
        for (long d : shape) {
          n = Math.multiplyExact(n, d);
        }
        expect = Math.multiplyExact(n, (long) dtype.bytes());
      } catch (ArithmeticException x) {
        throw bad(
            path,
            "tensor "
                + name
                + " has shape "
                + info.shapeString()
                + ", more elements than a file can"
                + " hold (the product overflows 64 bits)");
      }
      if (expect != end - begin) {
        throw bad(
            path,
            "tensor "
                + name
                + " is "
                + dtype
                + " "
                + info.shapeString()
                + " = "
                + expect
                + " bytes, but its data_offsets span "
                + (end - begin)
                + " bytes");
      }
      return info;
    } catch (CheckpointException e) {
      throw e;
    } catch (RuntimeException e) {
      throw bad(path, "the header entry of tensor " + name + " is malformed (" + e + ")");
    }
  }

  /**
   * @return a header number that must be a whole number of at most 18 digits (no silent truncation
   *     of 1.5)
   */
  private static long whole(Path path, String name, JsonElement e) {
    if (e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber()) {
      try {
        java.math.BigDecimal v = new java.math.BigDecimal(e.getAsString()).stripTrailingZeros();
        if (v.scale() <= 0 && v.precision() - v.scale() <= 18) {
          return v.longValueExact();
        }
      } catch (NumberFormatException | ArithmeticException x) {
        // reported below
      }
    }
    throw bad(
        path,
        "tensor "
            + name
            + " has "
            + e
            + " in its shape or data_offsets, not a whole number of at most"
            + " 18 digits");
  }

  private static void checkNoOverlap(Path path, Collection<TensorInfo> infos) {
    List<TensorInfo> sorted = new ArrayList<>(infos);
    sorted.sort((a, b) -> Long.compare(a.begin(), b.begin()));
    for (int i = 1; i < sorted.size(); i++) {
      TensorInfo prev = sorted.get(i - 1);
      TensorInfo cur = sorted.get(i);
      if (cur.begin() < prev.end()) {
        throw bad(
            path,
            "tensors "
                + prev.name()
                + " and "
                + cur.name()
                + " overlap in the file (corrupt header)");
      }
    }
  }

  private static void readFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
    while (buf.hasRemaining()) {
      int n = ch.read(buf, pos);
      if (n < 0) {
        throw new IOException("unexpected end of file");
      }
      pos += n;
    }
  }

  private static CheckpointException bad(Path path, String why) {
    return new CheckpointException(
        path
            + " is not a valid safetensors file: "
            + why
            + ". Re-download or re-save the checkpoint (safetensors.torch.save_file / save_pretrained).");
  }

  public Path path() {
    return path;
  }

  public long fileSize() {
    return fileSize;
  }

  /**
   * @return tensors in header order
   */
  public Map<String, TensorInfo> tensors() {
    return tensors;
  }

  public Map<String, String> metadata() {
    return metadata;
  }

  /**
   * Maps a tensor's bytes read-only, in little-endian order, as row-aligned chunks of at most 1 GiB
   * each. The buffers are views of the file: never hand them to an in-place engine op.
   */
  public List<ByteBuffer> map(TensorInfo info) {
    long rowBytes = info.byteLength();
    if (info.shape().length > 0 && info.shape()[0] > 0) {
      rowBytes = info.byteLength() / info.shape()[0];
    }
    long rowsPerChunk = Math.max(1, MAX_CHUNK_BYTES / Math.max(1, rowBytes));
    List<ByteBuffer> out = new ArrayList<>();
    try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
      long pos = dataStart + info.begin();
      long end = dataStart + info.end();
      if (pos == end) {
        out.add(ByteBuffer.allocateDirect(0).order(ByteOrder.LITTLE_ENDIAN));
        return out;
      }
      while (pos < end) {
        long len = Math.min(end - pos, rowsPerChunk * rowBytes);
        out.add(ch.map(FileChannel.MapMode.READ_ONLY, pos, len).order(ByteOrder.LITTLE_ENDIAN));
        pos += len;
      }
      return out;
    } catch (IOException e) {
      throw new CheckpointException(
          "cannot map tensor " + info.name() + " of " + path + ": " + e.getMessage(), e);
    }
  }

  /**
   * Unmaps buffers returned by {@link #map} now, rather than when the garbage collector finds them:
   * a loaded model holds its own copy of the weights, and the mapped pages would otherwise stay in
   * the process's resident memory next to it. The caller must hold no other reference to the
   * buffers or to a view of them (reading one afterwards would crash the JVM). Buffers that were
   * not mapped are left alone.
   *
   * <p>Java 17 has no public unmap ({@code MemorySegment} arenas came later); {@code
   * sun.misc.Unsafe.invokeCleaner} is the JDK's supported escape hatch for exactly this.
   */
  public static void unmap(List<ByteBuffer> buffers) {
    for (ByteBuffer b : buffers) {
      if (b instanceof MappedByteBuffer && UNSAFE != null) {
        UNSAFE.invokeCleaner(b);
      }
    }
  }

  private static final sun.misc.Unsafe UNSAFE = unsafe();

  private static sun.misc.Unsafe unsafe() {
    try {
      java.lang.reflect.Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
      f.setAccessible(true);
      return (sun.misc.Unsafe) f.get(null);
    } catch (ReflectiveOperationException | RuntimeException e) {
      return null; // buffers are then unmapped by the garbage collector, as before
    }
  }
}
