package io.olmoppl.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import io.olmoppl.checkpoint.writer.CheckpointMaker;
import io.olmoppl.checkpoint.writer.SafetensorsWriter;
import io.olmoppl.checkpoint.writer.SafetensorsWriter.Tensor;
import io.olmoppl.testing.Refcases;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded fuzzing of what a checkpoint from the internet can hold: mutated safetensors headers
 * (parsed in memory), mutated safetensors files (opened from disk, every tensor mapped), mutated
 * {@code config.json} values (parsed in memory, a share through {@link Checkpoint#open}). Every
 * case must load or throw {@link CheckpointException}: never another exception, an error, or a case
 * running past its time bound.
 */
class FuzzTest {
  private static final long SEED = 20261129L;
  private static final int HEADER_CASES = 7000;
  private static final int FILE_CASES = 1200;
  private static final int CONFIG_CASES = 3800;
  private static final int CONFIG_OPENS = 20;
  private static final long CASE_SECONDS = 10;

  private static ExecutorService worker;

  @TempDir Path tmp;

  @BeforeAll
  static void start() {
    io.olmoppl.runtime.DjlSettings.configure();
    worker =
        Executors.newSingleThreadExecutor(
            r -> {
              Thread t = new Thread(r, "fuzz-case");
              t.setDaemon(true);
              return t;
            });
  }

  @AfterAll
  static void stop() {
    worker.shutdownNow();
  }

  private int loaded;
  private int refused;

  /**
   * Runs one case under a time bound; anything but success or CheckpointException fails the test.
   */
  private void run(java.util.function.Supplier<String> what, Callable<?> c) throws Exception {
    Future<?> f = worker.submit(c);
    try {
      f.get(CASE_SECONDS, TimeUnit.SECONDS);
      loaded++;
    } catch (TimeoutException e) {
      f.cancel(true);
      fail("case ran past " + CASE_SECONDS + " s: " + what.get());
    } catch (java.util.concurrent.ExecutionException e) {
      if (e.getCause() instanceof CheckpointException) {
        refused++;
        assertTrue(e.getCause().getMessage() != null && !e.getCause().getMessage().isBlank(), what);
      } else {
        throw new AssertionError(
            "case threw " + e.getCause() + " instead of CheckpointException: " + what.get(),
            e.getCause());
      }
    }
  }

  private static List<Tensor> smallTensors() {
    return List.of(
        new Tensor("a.weight", DType.F32, new long[] {3, 4}, new float[12]),
        new Tensor("b.weight", DType.F16, new long[] {5}, new float[5]),
        new Tensor("c.bias", DType.BF16, new long[] {2, 2}, new float[4]),
        new Tensor("d.empty", DType.F32, new long[] {0, 7}, new float[0]));
  }

  private static JsonElement randomValue(SplittableRandom r) {
    return switch (r.nextInt(16)) {
      case 0 -> new JsonPrimitive(-r.nextInt(1000) - 1);
      case 1 -> new JsonPrimitive(Long.MAX_VALUE);
      case 2 -> new JsonPrimitive(new BigDecimal("1e" + r.nextInt(1, 400)));
      case 3 -> new JsonPrimitive(new BigDecimal("-1e-" + r.nextInt(1, 400)));
      case 4 -> new JsonPrimitive(r.nextInt(100) + 0.5);
      case 5 -> new JsonPrimitive("x" + r.nextInt(10));
      case 6 -> new JsonPrimitive(r.nextBoolean());
      case 7 -> JsonNull.INSTANCE;
      case 8 -> new JsonArray();
      case 9 -> new JsonObject();
      case 10 -> new JsonPrimitive(0);
      case 11 -> new JsonPrimitive((long) Integer.MAX_VALUE + r.nextInt(3) - 1);
      case 12 -> new JsonPrimitive(Integer.MIN_VALUE);
      case 13 -> new JsonPrimitive(new BigDecimal("1e999999999"));
      case 14 -> new JsonPrimitive(r.nextInt(1 << 16));
      default -> new JsonPrimitive(r.nextInt(64));
    };
  }

  private static String deepJson(int depth) {
    return "[".repeat(depth) + "]".repeat(depth);
  }

  /** A mutated header: JSON-level edits of one entry, or raw byte edits of the text. */
  private static byte[] mutateHeader(SplittableRandom r, String header, long dataLen) {
    JsonObject h = JsonParser.parseString(header).getAsJsonObject();
    List<String> names = new ArrayList<>(h.keySet());
    String name = names.get(r.nextInt(names.size()));
    JsonElement entry = h.get(name);
    int kind = r.nextInt(14);
    if (entry.isJsonObject() && kind < 9) {
      JsonObject o = entry.getAsJsonObject();
      switch (kind) {
        case 0 ->
            o.add(
                "dtype",
                r.nextBoolean()
                    ? randomValue(r)
                    : new JsonPrimitive(
                        List.of("F64", "I8", "BOOL", "U8", "F8_E4M3", "", "f32")
                            .get(r.nextInt(7))));
        case 1 -> {
          JsonArray s = new JsonArray();
          int n = r.nextInt(6);
          for (int i = 0; i < n; i++) {
            s.add(r.nextInt(4) == 0 ? randomValue(r) : new JsonPrimitive(r.nextInt(8)));
          }
          o.add("shape", s);
        }
        case 2 -> {
          JsonArray s = new JsonArray();
          s.add(1L << r.nextInt(20, 63));
          s.add(1L << r.nextInt(20, 63));
          s.add(r.nextInt(1, 5));
          o.add("shape", s);
        }
        case 3 -> {
          JsonArray d = new JsonArray();
          long b = r.nextLong(-5, dataLen + 10);
          d.add(b);
          d.add(b + r.nextLong(-5, 200));
          o.add("data_offsets", d);
        }
        case 4 -> {
          JsonArray d = new JsonArray();
          d.add(randomValue(r));
          d.add(randomValue(r));
          if (r.nextBoolean()) {
            d.add(1);
          }
          o.add("data_offsets", d);
        }
        case 5 -> o.remove(List.of("dtype", "shape", "data_offsets").get(r.nextInt(3)));
        case 6 ->
            o.add(List.of("dtype", "shape", "data_offsets").get(r.nextInt(3)), randomValue(r));
        case 7 -> { // overlap another tensor's bytes
          for (String other : names) {
            if (!other.equals(name) && h.get(other).isJsonObject()) {
              o.add("data_offsets", h.getAsJsonObject(other).get("data_offsets").deepCopy());
              o.add("shape", h.getAsJsonObject(other).get("shape").deepCopy());
              o.add("dtype", h.getAsJsonObject(other).get("dtype").deepCopy());
              break;
            }
          }
        }
        default -> o.add("shape", JsonParser.parseString(deepJson(r.nextInt(2, 200))));
      }
      return h.toString().getBytes(StandardCharsets.UTF_8);
    }
    return switch (kind) {
      case 9 -> {
        h.add(name, randomValue(r));
        yield h.toString().getBytes(StandardCharsets.UTF_8);
      }
      case 10 -> deepJson(r.nextInt(100, 10_000)).getBytes(StandardCharsets.UTF_8);
      case 11 -> {
        h.add(
            "__metadata__",
            r.nextBoolean()
                ? randomValue(r)
                : JsonParser.parseString("{\"k\":" + deepJson(50) + "}"));
        yield h.toString().getBytes(StandardCharsets.UTF_8);
      }
      case 12 -> { // a huge but valid string value
        h.addProperty("padding", "z".repeat(r.nextInt(1, 1 << 16)));
        yield h.toString().getBytes(StandardCharsets.UTF_8);
      }
      default -> { // flipped, inserted or cut bytes
        byte[] b = header.getBytes(StandardCharsets.UTF_8);
        int edits = r.nextInt(1, 6);
        for (int i = 0; i < edits && b.length > 0; i++) {
          int at = r.nextInt(b.length);
          switch (r.nextInt(3)) {
            case 0 -> b[at] ^= (byte) (1 << r.nextInt(8));
            case 1 -> b[at] = (byte) r.nextInt(256);
            default -> b = Arrays.copyOf(b, at);
          }
        }
        yield b;
      }
    };
  }

  @Test
  void mutatedCheckpointsLoadOrThrowCheckpointException() throws Exception {
    SplittableRandom r = new SplittableRandom(SEED);
    Path base = tmp.resolve("base.safetensors");
    SafetensorsWriter.write(base, smallTensors());
    byte[] file = Files.readAllBytes(base);
    long headerLen = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
    String header = new String(file, 8, (int) headerLen, StandardCharsets.UTF_8);
    long dataLen = file.length - 8 - headerLen;

    // 1. headers, in memory (the file size is that of the unmutated file, give or take)
    for (int i = 0; i < HEADER_CASES; i++) {
      byte[] h = mutateHeader(r, header, dataLen);
      long size = 8 + h.length + Math.max(0, dataLen + r.nextLong(-16, 16));
      int n = i;
      run(
          () ->
              "header case "
                  + n
                  + ": "
                  + new String(h, 0, Math.min(h.length, 300), StandardCharsets.UTF_8),
          () -> SafetensorsFile.parse(base, size, h));
    }

    // 2. whole files on disk: length field, header and data mutated; every tensor of a file that
    // opens is mapped
    Path f = tmp.resolve("model.safetensors");
    for (int i = 0; i < FILE_CASES; i++) {
      byte[] b;
      int kind = r.nextInt(5);
      if (kind == 0) { // length field
        b = file.clone();
        long len =
            switch (r.nextInt(6)) {
              case 0 -> -r.nextLong(1, Long.MAX_VALUE);
              case 1 -> r.nextLong(SafetensorsFile.MAX_HEADER_BYTES, Long.MAX_VALUE);
              case 2 -> headerLen + r.nextInt(-3, 4);
              case 3 -> 0;
              case 4 -> file.length - 8 + r.nextInt(0, 3);
              default -> r.nextLong(0, 1 << 20);
            };
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(0, len);
      } else if (kind == 1) { // truncated or extended
        b = Arrays.copyOf(file, r.nextInt(0, file.length + 64));
      } else { // a mutated header with the original data
        byte[] h = mutateHeader(r, header, dataLen);
        ByteBuffer bb =
            ByteBuffer.allocate(8 + h.length + (int) dataLen).order(ByteOrder.LITTLE_ENDIAN);
        bb.putLong(h.length).put(h).put(file, 8 + (int) headerLen, (int) dataLen);
        b = bb.array();
      }
      Files.write(f, b);
      byte[] shown = b;
      int n = i;
      run(
          () -> "file case " + n + " (" + shown.length + " bytes)",
          () -> {
            SafetensorsFile s = SafetensorsFile.open(f);
            for (SafetensorsFile.TensorInfo t : s.tensors().values()) {
              for (ByteBuffer x : s.map(t)) {
                if (x.capacity() > 0) {
                  x.get(x.capacity() - 1);
                }
              }
            }
            return s;
          });
    }

    // 3. config values: every layout's config, keys set to hostile values, removed, or added
    List<JsonObject> configs = new ArrayList<>();
    for (CheckpointLayout l : CheckpointLayout.values()) {
      configs.add(CheckpointMaker.small(l).config());
    }
    for (int i = 0; i < CONFIG_CASES; i++) {
      JsonObject c = configs.get(r.nextInt(configs.size())).deepCopy();
      int edits = r.nextInt(1, 4);
      for (int e = 0; e < edits; e++) {
        List<String> keys = new ArrayList<>(c.keySet());
        String k = keys.get(r.nextInt(keys.size()));
        switch (r.nextInt(5)) {
          case 0 -> c.remove(k);
          case 1 ->
              c.add(
                  List.of(
                          "rope_scaling",
                          "n_kv_heads",
                          "multi_query_attention",
                          "embedding_size",
                          "clip_qkv",
                          "bos_token_id",
                          "mlp_hidden_size")
                      .get(r.nextInt(7)),
                  randomValue(r));
          default -> c.add(k, randomValue(r));
        }
      }
      JsonObject mutated = c;
      int n = i;
      run(
          () -> "config case " + n + ": " + mutated,
          () -> {
            OlmoConfig cfg = OlmoConfig.fromJson(mutated, "config.json");
            return cfg.layout().tensors(cfg);
          });
    }

    // 4. a share of mutated configs through Checkpoint.open, against a real checkpoint directory
    Path dir = tmp.resolve("ckpt");
    CheckpointMaker maker =
        CheckpointMaker.small(CheckpointLayout.OLMO)
            .withDims(16, 1, 4, 2, 24, 32)
            .withVocabRows(50304);
    maker.write(dir, Refcases.dir("p01_olmo_tied_f32").resolve("tokenizer.json"));
    JsonObject good = maker.config();
    for (int i = 0; i < CONFIG_OPENS; i++) {
      JsonObject c = good.deepCopy();
      List<String> keys = new ArrayList<>(c.keySet());
      c.add(
          keys.get(r.nextInt(keys.size())),
          r.nextInt(3) == 0 ? new JsonPrimitive(r.nextInt(1, 64)) : randomValue(r));
      Files.writeString(dir.resolve("config.json"), c.toString());
      int n = i;
      run(() -> "open case " + n + ": " + c, () -> Checkpoint.open(dir, TyingRule.STRICT));
    }
    int total = HEADER_CASES + FILE_CASES + CONFIG_CASES + CONFIG_OPENS;
    System.out.println(
        "FuzzTest: "
            + total
            + " cases (seed "
            + SEED
            + "): "
            + loaded
            + " loaded, "
            + refused
            + " refused with CheckpointException");
    assertEquals(total, loaded + refused);
    assertTrue(loaded > 0 && refused > total / 2, "the mutations reach both outcomes");
  }
}
