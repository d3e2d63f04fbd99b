package io.olmoppl.checkpoint;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.checkpoint.Checkpoint.Located;
import io.olmoppl.checkpoint.SafetensorsFile.TensorInfo;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
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
    Map<String, SafetensorsFile> files = new LinkedHashMap<>();
    for (Map.Entry<String, JsonElement> e : map.entrySet()) {
      if (!e.getValue().isJsonPrimitive()) {
        throw CheckpointErrors.indexEntryNotAFileName(idx, e.getKey(), e.getValue());
      }
      String shard = e.getValue().getAsString();
      Path shardPath = dir.resolve(shard).normalize();
      if (!shardPath.startsWith(dir.normalize()) || !Files.isRegularFile(shardPath)) {
        throw CheckpointErrors.shardMissing(idx, e.getKey(), shard, dir);
      }
      SafetensorsFile f = files.computeIfAbsent(shard, s -> SafetensorsFile.open(shardPath));
      TensorInfo info = f.tensors().get(e.getKey());
      if (info == null) {
        throw CheckpointErrors.shardLacksTensor(idx, e.getKey(), shard);
      }
      out.put(e.getKey(), new Located(f, info));
    }
    return out;
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
