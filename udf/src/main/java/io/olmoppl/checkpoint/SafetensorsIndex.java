package io.olmoppl.checkpoint;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.checkpoint.Checkpoint.Located;
import io.olmoppl.checkpoint.SafetensorsFile.TensorInfo;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * Where each stored tensor of a checkpoint directory lies: one {@code model.safetensors}, or the
 * shards a {@code model.safetensors.index.json} names (transformers' sharded format, whose {@code
 * weight_map} maps tensor name to shard file). A directory with only pickle weights ({@code .bin},
 * {@code .pt}, ...) is refused with the conversion to run: loading a pickle runs arbitrary code.
 *
 * <p>Shards are read as strictly as one file: a tensor a shard holds but the index does not list,
 * or one stored in two shards with different contents, is refused (a byte-identical second copy is
 * an alias and is accepted).
 */
final class SafetensorsIndex {
  private SafetensorsIndex() {}

  /**
   * @return every stored tensor by name, sorted (the fingerprint hashes them in this order)
   * @throws CheckpointException when the directory has no safetensors weights, or the index and the
   *     shards do not agree
   */
  static Map<String, Located> read(Path dir) {
    Path single = dir.resolve("model.safetensors");
    Path idx = dir.resolve("model.safetensors.index.json");
    for (Path p : List.of(single, idx)) {
      if (Files.exists(p) && !Files.isRegularFile(p)) {
        throw CheckpointErrors.notARegularFile(p);
      }
    }
    if (Files.isRegularFile(single)) {
      Map<String, Located> out = new TreeMap<>();
      SafetensorsFile f = SafetensorsFile.open(single);
      f.tensors().values().forEach(t -> out.put(t.name(), new Located(f, t)));
      return out;
    }
    if (Files.isRegularFile(idx)) {
      return sharded(dir, idx);
    }
    refusePickles(dir);
    throw CheckpointErrors.noWeights(dir);
  }

  private static Map<String, Located> sharded(Path dir, Path idx) {
    JsonObject map;
    try {
      map =
          JsonParser.parseString(new String(Checkpoint.read(idx), StandardCharsets.UTF_8))
              .getAsJsonObject()
              .getAsJsonObject("weight_map");
    } catch (RuntimeException e) {
      throw CheckpointErrors.indexNotJson(idx, e);
    }
    if (map == null) {
      throw CheckpointErrors.indexWithoutWeightMap(idx);
    }
    Map<String, Located> out = new TreeMap<>();
    Map<Path, SafetensorsFile> files = new LinkedHashMap<>();
    for (Map.Entry<String, JsonElement> e : map.entrySet()) {
      if (!e.getValue().isJsonPrimitive()) {
        throw CheckpointErrors.indexEntryNotAFileName(idx, e.getKey(), e.getValue());
      }
      String shard = e.getValue().getAsString();
      Path shardPath = dir.resolve(shard).normalize();
      if (!shardPath.startsWith(dir.normalize()) || !Files.isRegularFile(shardPath)) {
        throw CheckpointErrors.shardMissing(idx, e.getKey(), shard, dir);
      }
      SafetensorsFile f = files.computeIfAbsent(shardPath, SafetensorsFile::open);
      TensorInfo info = f.tensors().get(e.getKey());
      if (info == null) {
        throw CheckpointErrors.shardLacksTensor(idx, e.getKey(), shard);
      }
      out.put(e.getKey(), new Located(f, info));
    }
    requireShardsMatchIndex(idx, out, files.values());
    return out;
  }

  /**
   * As strict as one file: every tensor a shard holds is in the index, and a tensor stored in a
   * second shard besides the one the index names is refused unless it is a byte-identical copy (an
   * alias, loaded once, as a tied output copy is), so that no stored value is ignored unseen.
   */
  private static void requireShardsMatchIndex(
      Path idx, Map<String, Located> indexed, Iterable<SafetensorsFile> shards) {
    List<String> unlisted = new ArrayList<>();
    for (SafetensorsFile f : shards) {
      for (TensorInfo t : f.tensors().values()) {
        Located named = indexed.get(t.name());
        if (named == null) {
          unlisted.add(t.name() + " " + t.shapeString() + " in " + f.path().getFileName());
        } else if (named.file() != f) {
          String diff = difference(named, new Located(f, t));
          if (diff != null) {
            throw CheckpointErrors.shardCopiesDiffer(
                idx, t.name(), named.file().path(), f.path(), diff);
          }
        }
      }
    }
    if (!unlisted.isEmpty()) {
      throw CheckpointErrors.shardTensorsNotInIndex(idx, unlisted);
    }
  }

  /**
   * @return how two copies of a tensor differ (dtype, shape, or the first differing element), or
   *     null when they are byte-identical
   */
  private static String difference(Located a, Located b) {
    TensorInfo x = a.info();
    TensorInfo y = b.info();
    if (x.dtype() != y.dtype() || !Arrays.equals(x.shape(), y.shape())) {
      return x.dtype() + " " + x.shapeString() + " against " + y.dtype() + " " + y.shapeString();
    }
    List<ByteBuffer> ca = a.file().map(x);
    List<ByteBuffer> cb = b.file().map(y);
    try {
      long at = firstMismatch(ca, cb);
      if (at < 0) {
        return null;
      }
      int step = x.dtype().bytes();
      long element = at / step;
      return "element "
          + element
          + " is "
          + valueAt(x.dtype(), ca, element * step)
          + " against "
          + valueAt(y.dtype(), cb, element * step);
    } finally {
      SafetensorsFile.unmap(ca);
      SafetensorsFile.unmap(cb);
    }
  }

  /**
   * @return the first byte offset where two equally long chunked byte sequences differ, or -1
   */
  static long firstMismatch(List<ByteBuffer> a, List<ByteBuffer> b) {
    int ia = 0;
    int ib = 0;
    ByteBuffer x = a.isEmpty() ? null : a.get(0).duplicate().clear();
    ByteBuffer y = b.isEmpty() ? null : b.get(0).duplicate().clear();
    long done = 0;
    while (x != null && y != null) {
      int n = Math.min(x.remaining(), y.remaining());
      int m = x.slice(x.position(), n).mismatch(y.slice(y.position(), n));
      if (m >= 0) {
        return done + m;
      }
      x.position(x.position() + n);
      y.position(y.position() + n);
      done += n;
      if (!x.hasRemaining()) {
        x = ++ia < a.size() ? a.get(ia).duplicate().clear() : null;
      }
      if (!y.hasRemaining()) {
        y = ++ib < b.size() ? b.get(ib).duplicate().clear() : null;
      }
    }
    return -1;
  }

  private static float valueAt(DType d, List<ByteBuffer> chunks, long byteOffset) {
    for (ByteBuffer c : chunks) {
      if (byteOffset < c.capacity()) {
        return DType.widen(d, c, (int) byteOffset);
      }
      byteOffset -= c.capacity();
    }
    return Float.NaN;
  }

  private static void refusePickles(Path dir) {
    try (Stream<Path> s = Files.list(dir)) {
      List<String> pickles =
          s.map(p -> p.getFileName().toString())
              .filter(
                  n ->
                      n.endsWith(".bin")
                          || n.endsWith(".pt")
                          || n.endsWith(".pth")
                          || n.endsWith(".ckpt")
                          || n.equals("pytorch_model.bin.index.json"))
              .sorted()
              .toList();
      if (!pickles.isEmpty()) {
        throw CheckpointErrors.onlyPickles(dir, pickles);
      }
    } catch (IOException e) {
      throw CheckpointErrors.cannotList(dir, e);
    }
  }
}
