package io.olmoppl.checkpoint;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import io.olmoppl.checkpoint.CheckpointLayout.Stored;
import io.olmoppl.checkpoint.SafetensorsFile.TensorInfo;
import java.io.IOException;
import java.io.StringReader;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * A validated Hugging Face checkpoint directory: the tensor index (single or sharded safetensors),
 * validation of the tensors against what the config's {@link CheckpointLayout} requires, the
 * tokenizer, the weight-tying decision and a fingerprint. Opening it reads headers only (plus the
 * two matrices when an output copy has to be compared with the embedding); {@link
 * io.olmoppl.model.OlmoModel#load} loads the data.
 *
 * <p>Validation is strict: a missing, unexpected or misshaped tensor is an error naming it, the
 * expected shape and the file.
 */
public final class Checkpoint implements WeightSource {
  /** Where a tensor lies: the file and its header entry. */
  public record Located(SafetensorsFile file, TensorInfo info) {}

  private final Path dir;
  private final OlmoConfig config;
  private final Map<String, Located> tensors;
  private final Map<String, long[]> expected;
  private final Path tokenizerJson;
  private final Tying tying;
  private final String fingerprint;
  private final int tokenizerSize;

  private Checkpoint(
      Path dir,
      OlmoConfig config,
      Map<String, Located> tensors,
      Map<String, long[]> expected,
      Path tokenizerJson,
      Tying tying,
      String fingerprint,
      int tokenizerSize) {
    this.dir = dir;
    this.config = config;
    this.tensors = tensors;
    this.expected = expected;
    this.tokenizerJson = tokenizerJson;
    this.tying = tying;
    this.fingerprint = fingerprint;
    this.tokenizerSize = tokenizerSize;
  }

  /**
   * Opens and validates a checkpoint directory.
   *
   * @param dir the directory holding config.json, model.safetensors (or an index) and
   *     tokenizer.json
   * @param rule what to do with a stored output matrix that differs from a tied embedding
   * @throws CheckpointException naming what is wrong, why and how to fix it
   */
  public static Checkpoint open(Path dir, TyingRule rule) {
    if (!Files.isDirectory(dir)) {
      throw new CheckpointException(
          "the model path "
              + dir
              + " is not a directory. Give the Hugging Face checkpoint"
              + " directory (config.json, model.safetensors, tokenizer.json).");
    }
    Path configPath = dir.resolve("config.json");
    if (!Files.isRegularFile(configPath)) {
      throw new CheckpointException(
          dir
              + " has no config.json, so it is not a Hugging Face checkpoint directory."
              + " Give the model path of the directory that holds config.json, model.safetensors and tokenizer.json.");
    }
    Map<String, Located> tensors =
        index(dir); // first: a pickle-only directory is refused before anything else
    byte[] configBytes = read(configPath);
    JsonObject json;
    try {
      json =
          JsonParser.parseString(new String(configBytes, StandardCharsets.UTF_8)).getAsJsonObject();
    } catch (RuntimeException e) {
      throw new CheckpointException(
          configPath
              + " is not a JSON object ("
              + e.getMessage()
              + "). Restore the"
              + " checkpoint's config.json.");
    }
    OlmoConfig config = OlmoConfig.fromJson(json, configPath.toString());
    Path tokPath = dir.resolve("tokenizer.json");
    if (!Files.isRegularFile(tokPath)) {
      throw new CheckpointException(
          dir
              + " has no tokenizer.json. olmo-ppl tokenizes with the checkpoint's own"
              + " Hugging Face tokenizer; copy the model's tokenizer.json into the directory.");
    }
    byte[] tokBytes = read(tokPath);
    int tokSize;
    try {
      TokenizerFacts tok = TokenizerFacts.read(new String(tokBytes, StandardCharsets.UTF_8));
      tokSize = tok.size();
      config = fixEos(config, tok.addedTokens());
    } catch (IOException | RuntimeException e) {
      throw new CheckpointException(
          tokPath
              + " is not a valid Hugging Face tokenizer.json ("
              + e.getMessage()
              + "). Copy the model's own tokenizer.json into the checkpoint directory.",
          e);
    }
    if (tokSize > config.vocabRows()) {
      throw new CheckpointException(
          tokPath
              + " has token ids up to "
              + (tokSize - 1)
              + " but the model has only "
              + config.vocabRows()
              + " embedding rows, so some tokens have no embedding. Use the tokenizer.json that"
              + " belongs to this model.");
    }

    Map<String, long[]> expected = config.layout().tensors(config);
    Tying tying = resolveTying(config, tensors, rule);
    validate(dir, config, tensors, expected, tying);
    String fingerprint = fingerprint(configBytes, tokBytes, tensors);
    return new Checkpoint(dir, config, tensors, expected, tokPath, tying, fingerprint, tokSize);
  }

  private static byte[] read(Path p) {
    try {
      return Files.readAllBytes(p);
    } catch (IOException e) {
      throw new CheckpointException("cannot read " + p + ": " + e.getMessage(), e);
    }
  }

  /**
   * Builds the name -> file index from model.safetensors or model.safetensors.index.json; refuses
   * pickles.
   */
  private static Map<String, Located> index(Path dir) {
    Path single = dir.resolve("model.safetensors");
    Path idx = dir.resolve("model.safetensors.index.json");
    Map<String, Located> out = new TreeMap<>();
    for (Path p : List.of(single, idx)) {
      if (Files.exists(p) && !Files.isRegularFile(p)) {
        throw new CheckpointException(
            p
                + " is not a regular file (a directory, a device or a link to one). Replace"
                + " it with the checkpoint's real "
                + p.getFileName()
                + ".");
      }
    }
    if (Files.isRegularFile(single)) {
      SafetensorsFile f = SafetensorsFile.open(single);
      f.tensors().values().forEach(t -> out.put(t.name(), new Located(f, t)));
      return out;
    }
    if (Files.isRegularFile(idx)) {
      JsonObject map;
      try {
        map =
            JsonParser.parseString(new String(read(idx), StandardCharsets.UTF_8))
                .getAsJsonObject()
                .getAsJsonObject("weight_map");
      } catch (RuntimeException e) {
        throw new CheckpointException(
            idx
                + " is not valid JSON ("
                + e.getMessage()
                + "). Re-download the index of"
                + " the sharded checkpoint.",
            e);
      }
      if (map == null) {
        throw new CheckpointException(
            idx + " has no weight_map object. Re-save the sharded checkpoint.");
      }
      Map<String, SafetensorsFile> files = new LinkedHashMap<>();
      for (Map.Entry<String, JsonElement> e : map.entrySet()) {
        if (!e.getValue().isJsonPrimitive()) {
          throw new CheckpointException(
              idx
                  + " maps tensor "
                  + e.getKey()
                  + " to "
                  + e.getValue()
                  + ", not to a"
                  + " file name. Re-download the index of the sharded checkpoint.");
        }
        String shard = e.getValue().getAsString();
        Path shardPath = dir.resolve(shard).normalize();
        if (!shardPath.startsWith(dir.normalize()) || !Files.isRegularFile(shardPath)) {
          throw new CheckpointException(
              idx
                  + " maps tensor "
                  + e.getKey()
                  + " to "
                  + shard
                  + ", which is not a file"
                  + " in "
                  + dir
                  + ". Download every shard listed in the index.");
        }
        SafetensorsFile f = files.computeIfAbsent(shard, s -> SafetensorsFile.open(shardPath));
        TensorInfo info = f.tensors().get(e.getKey());
        if (info == null) {
          throw new CheckpointException(
              idx
                  + " says tensor "
                  + e.getKey()
                  + " is in "
                  + shard
                  + ", but that file does"
                  + " not hold it. The shards and the index do not belong together; re-download the checkpoint.");
        }
        out.put(e.getKey(), new Located(f, info));
      }
      return out;
    }
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
        throw new CheckpointException(
            dir
                + " holds only pickle weights "
                + pickles
                + ". olmo-ppl never loads pickle"
                + " files (loading one runs arbitrary code). Convert the checkpoint to safetensors first, e.g. in Python:"
                + " AutoModelForCausalLM.from_pretrained(DIR).save_pretrained(OUT, safe_serialization=True), and copy"
                + " tokenizer.json next to it.");
      }
    } catch (IOException e) {
      throw new CheckpointException("cannot list " + dir + ": " + e.getMessage(), e);
    }
    throw new CheckpointException(
        dir
            + " has no model.safetensors and no model.safetensors.index.json. Download"
            + " the safetensors weights of the checkpoint into this directory.");
  }

  /**
   * What the checks need from tokenizer.json, read in one streaming pass: the merges, most of the
   * file, are skipped unparsed (building Gson's tree of the whole file took 0.1 to 0.4 s per open).
   */
  private record TokenizerFacts(int maxVocabId, JsonArray addedTokens) {
    static TokenizerFacts read(String json) throws IOException {
      JsonReader r = new JsonReader(new StringReader(json));
      r.setLenient(true); // as JsonParser.parseString
      boolean vocab = false;
      int max = -1;
      JsonArray added = null;
      r.beginObject();
      while (r.hasNext()) {
        String key = r.nextName();
        if (key.equals("model") && r.peek() == JsonToken.BEGIN_OBJECT) {
          r.beginObject();
          while (r.hasNext()) {
            if (r.nextName().equals("vocab")) {
              vocab = true;
              if (r.peek() == JsonToken.BEGIN_OBJECT) {
                r.beginObject();
                while (r.hasNext()) {
                  r.nextName();
                  max = Math.max(max, r.nextInt());
                }
                r.endObject();
                continue;
              }
            }
            r.skipValue();
          }
          r.endObject();
        } else if (key.equals("added_tokens") && r.peek() == JsonToken.BEGIN_ARRAY) {
          added = JsonParser.parseReader(r).getAsJsonArray();
        } else {
          r.skipValue();
        }
      }
      r.endObject();
      if (r.peek() != JsonToken.END_DOCUMENT) {
        throw new IllegalArgumentException("text follows the JSON object");
      }
      if (!vocab) {
        throw new IllegalArgumentException(
            "it has no \"model\" with a \"vocab\", so it cannot tokenize anything");
      }
      return new TokenizerFacts(max, added);
    }

    /**
     * @return 1 + the largest token id the tokenizer can produce
     */
    int size() {
      int m = maxVocabId;
      if (addedTokens != null) {
        for (JsonElement e : addedTokens) {
          m = Math.max(m, e.getAsJsonObject().get("id").getAsInt());
        }
      }
      return m + 1;
    }
  }

  /**
   * OLMo-1 configs in the wild say {@code eos_token_id: 0}, the id the training tokenizer calls
   * {@code |||IP_ADDRESS|||}; the documents were terminated with {@code <|endoftext|>} (50279), and
   * allenai's and transformers' OLMo converters write that id.
   */
  private static OlmoConfig fixEos(OlmoConfig config, JsonArray addedTokens) {
    if (config.eosTokenId() != 0 || addedTokens == null) {
      return config;
    }
    String id0 = null;
    Integer eot = null;
    for (JsonElement e : addedTokens) {
      JsonObject o = e.getAsJsonObject();
      int id = o.get("id").getAsInt();
      String content = o.get("content").getAsString();
      if (id == 0) {
        id0 = content;
      }
      if (content.equals("<|endoftext|>")) {
        eot = id;
      }
    }
    if (eot != null && eot != 0 && !"<|endoftext|>".equals(id0)) {
      return config.withEos(
          eot,
          "config.json says eos_token_id 0, which this tokenizer calls "
              + id0
              + "; using "
              + eot
              + " (<|endoftext|>) as OLMo's converters do (the known OLMo eos bug)");
    }
    return config;
  }

  private static Tying resolveTying(OlmoConfig c, Map<String, Located> tensors, TyingRule rule) {
    String emb = c.layout().embedding();
    String out = c.layout().output();
    Located e = tensors.get(emb);
    Located o = tensors.get(out);
    String key =
        c.tyingKey() + (c.tyingKeyPresent() ? "" : " (absent: " + c.layout().id() + " default)");
    if (e == null) {
      throw new CheckpointException(
          "the checkpoint has no embedding tensor "
              + emb
              + " (expected shape ["
              + c.vocabRows()
              + ", "
              + c.hiddenSize()
              + "]). The weights are incomplete or not an OLMo "
              + c.layout().id()
              + " checkpoint.");
    }
    if (!c.tied()) {
      if (o == null) {
        throw new CheckpointException(
            "the config says the model is untied ("
                + key
                + " = false), but the"
                + " checkpoint has no output matrix "
                + out
                + " (expected shape ["
                + c.vocabRows()
                + ", "
                + c.hiddenSize()
                + "]) in "
                + e.file().path()
                + ". If the model ties its output to the embedding, set "
                + c.tyingKey()
                + ": true in config.json; otherwise the weights are incomplete.");
      }
      return new Tying(false, List.of(), emb, out, null, List.of());
    }
    if (o == null) {
      return new Tying(true, List.of(emb), emb, emb, null, List.of());
    }
    checkShape(out, o, new long[] {c.vocabRows(), c.hiddenSize()});
    // Same dtype: an alias is byte-identical (a fast buffer compare); across dtypes: equal after
    // exact widening.
    boolean alias =
        e.info().dtype() == o.info().dtype() ? sameBytes(e, o) : maxAbsDiff(e, o) == 0.0;
    if (alias) {
      return new Tying(true, List.of(emb, out), emb, emb, null, List.of());
    }
    double diff = maxAbsDiff(e, o);
    String both =
        "the config says tied ("
            + key
            + " = true), but the checkpoint stores an output matrix "
            + out
            + " that differs from the embedding "
            + emb
            + " (max abs difference "
            + diff
            + ")";
    switch (rule) {
      case CONFIG:
        return new Tying(
            true,
            List.of(emb),
            emb,
            emb,
            out,
            List.of(
                both
                    + "; tying config: logits use "
                    + emb
                    + " (OLMo's rule) and "
                    + out
                    + " is ignored"));
      case CHECKPOINT:
        return new Tying(
            false,
            List.of(),
            emb,
            out,
            null,
            List.of(
                both + "; tying checkpoint: " + out + " is used as an untied output projection"));
      default:
        throw new CheckpointException(
            both
                + ". olmo-ppl will not pick one silently. Set tying to config (--tying"
                + " config on the command line; OLMo's rule: logits from "
                + emb
                + ", ignore "
                + out
                + ") or to checkpoint"
                + " (--tying checkpoint: use "
                + out
                + " as an untied output matrix), or fix the checkpoint.");
    }
  }

  private static boolean sameBytes(Located a, Located b) {
    List<ByteBuffer> x = a.file().map(a.info());
    List<ByteBuffer> y = b.file().map(b.info());
    try {
      for (int i = 0; i < x.size(); i++) {
        if (!x.get(i).equals(y.get(i))) {
          return false;
        }
      }
      return true;
    } finally {
      SafetensorsFile.unmap(x);
      SafetensorsFile.unmap(y);
    }
  }

  /**
   * Max |a - b| over all elements after exact widening to float ({@code +inf} for NaN mismatches).
   */
  private static double maxAbsDiff(Located a, Located b) {
    List<ByteBuffer> x = a.file().map(a.info());
    List<ByteBuffer> y = b.file().map(b.info());
    try {
      DType dx = a.info().dtype();
      DType dy = b.info().dtype();
      long n = a.info().numel();
      double max = 0;
      int cx = 0;
      int cy = 0;
      int px = 0;
      int py = 0;
      for (long i = 0; i < n; i++) {
        if (px >= x.get(cx).capacity()) {
          cx++;
          px = 0;
        }
        if (py >= y.get(cy).capacity()) {
          cy++;
          py = 0;
        }
        float fx = DType.widen(dx, x.get(cx), px);
        float fy = DType.widen(dy, y.get(cy), py);
        px += dx.bytes();
        py += dy.bytes();
        double d = Math.abs((double) fx - fy);
        if (Double.isNaN(d)) {
          d = Float.isNaN(fx) && Float.isNaN(fy) ? 0 : Double.POSITIVE_INFINITY;
        }
        max = Math.max(max, d);
      }
      return max;
    } finally {
      SafetensorsFile.unmap(x);
      SafetensorsFile.unmap(y);
    }
  }

  private static void checkShape(String name, Located t, long[] shape) {
    if (!Arrays.equals(t.info().shape(), shape)) {
      throw new CheckpointException(
          "tensor "
              + name
              + " in "
              + t.file().path()
              + " has shape "
              + t.info().shapeString()
              + " but the config implies "
              + Arrays.toString(shape)
              + ". The weights do not match config.json; use the config that belongs to these weights.");
    }
  }

  private static void validate(
      Path dir,
      OlmoConfig c,
      Map<String, Located> tensors,
      Map<String, long[]> expected,
      Tying tying) {
    List<String> missing = new ArrayList<>();
    for (Map.Entry<String, long[]> e : expected.entrySet()) {
      Located t = tensors.get(e.getKey());
      if (t == null) {
        missing.add(e.getKey() + " " + Arrays.toString(e.getValue()));
      } else {
        checkShape(e.getKey(), t, e.getValue());
      }
    }
    String out = c.layout().output();
    Stored outBias = c.layout().loadedOutputBias(c, tying.tied());
    if (!tying.tied()) {
      checkShape(out, tensors.get(out), new long[] {c.vocabRows(), c.hiddenSize()});
      if (outBias != null && !tensors.containsKey(outBias.name())) {
        missing.add(outBias.toString());
      }
    }
    if (!missing.isEmpty()) {
      throw new CheckpointException(
          "the checkpoint in "
              + dir
              + " lacks "
              + missing.size()
              + " tensor(s) that its "
              + c.layout().id()
              + " config requires: "
              + abbreviate(missing)
              + ". The weights are incomplete or belong to"
              + " a different config; re-download the checkpoint or use its own config.json.");
    }
    List<String> unexpected = new ArrayList<>();
    for (Map.Entry<String, Located> e : tensors.entrySet()) {
      String n = e.getKey();
      if (expected.containsKey(n)
          || n.equals(out)
          || (outBias != null && n.equals(outBias.name()))
          || c.layout().ignorable(n)) {
        continue;
      }
      unexpected.add(
          n
              + " "
              + e.getValue().info().shapeString()
              + " in "
              + e.getValue().file().path().getFileName());
    }
    if (!unexpected.isEmpty()) {
      throw new CheckpointException(
          "the checkpoint in "
              + dir
              + " has "
              + unexpected.size()
              + " tensor(s) that its "
              + c.layout().id()
              + " config does not use: "
              + abbreviate(unexpected)
              + ". olmo-ppl loads strictly so that"
              + " a mismatched config cannot go unnoticed; check that config.json belongs to these weights.");
    }
  }

  private static String abbreviate(List<String> names) {
    return names.size() <= 8
        ? names.toString()
        : names.subList(0, 8) + " and " + (names.size() - 8) + " more";
  }

  private static String fingerprint(byte[] config, byte[] tokenizer, Map<String, Located> tensors) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      md.update(config);
      md.update((byte) 0);
      md.update(tokenizer);
      for (Located t : tensors.values()) { // TreeMap: sorted by name
        TensorInfo i = t.info();
        md.update(
            (i.name() + "|" + i.dtype() + "|" + i.shapeString() + "|" + i.byteLength() + "\n")
                .getBytes(StandardCharsets.UTF_8));
      }
      return HexFormat.of().formatHex(md.digest()).substring(0, 16);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public TensorInfo info(String name) {
    return tensors.get(name).info();
  }

  @Override
  public List<ByteBuffer> chunks(String name) {
    Located t = tensors.get(name);
    return t.file().map(t.info());
  }

  /** Unmaps the buffers of {@link #chunks} now (see {@link SafetensorsFile#unmap}). */
  @Override
  public void release(List<ByteBuffer> chunks) {
    SafetensorsFile.unmap(chunks);
  }

  public Path dir() {
    return dir;
  }

  public OlmoConfig config() {
    return config;
  }

  /**
   * @return every stored tensor by name (sorted)
   */
  public Map<String, Located> tensors() {
    return tensors;
  }

  /**
   * @return the tensors the forward pass uses besides the output matrix, with shapes
   */
  public Map<String, long[]> expected() {
    return expected;
  }

  public Path tokenizerJson() {
    return tokenizerJson;
  }

  public Tying tying() {
    return tying;
  }

  /**
   * @return a stable hash of config.json, tokenizer.json and the tensor headers
   */
  public String fingerprint() {
    return fingerprint;
  }

  public int tokenizerSize() {
    return tokenizerSize;
  }

  /**
   * @return the distinct tensors the model loads, in load order (the tied matrix once)
   */
  public List<String> loadedTensors() {
    List<String> names = new ArrayList<>(expected.keySet());
    if (!tying.tied()) {
      names.add(tying.outputTensor());
      Stored bias = config.layout().loadedOutputBias(config, tying.tied());
      if (bias != null) {
        names.add(bias.name());
      }
    }
    return names;
  }

  /**
   * @return number of parameters of the distinct loaded tensors
   */
  public long parameterCount() {
    return loadedTensors().stream().mapToLong(n -> tensors.get(n).info().numel()).sum();
  }

  /**
   * @return stored bytes of the distinct loaded tensors (the tied matrix counted once)
   */
  public long uniqueWeightBytes() {
    return loadedTensors().stream().mapToLong(n -> tensors.get(n).info().byteLength()).sum();
  }
}
