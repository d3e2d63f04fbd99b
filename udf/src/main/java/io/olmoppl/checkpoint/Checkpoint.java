package io.olmoppl.checkpoint;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.checkpoint.BlockTensors.Stored;
import io.olmoppl.checkpoint.SafetensorsFile.TensorInfo;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A validated Hugging Face checkpoint directory: the tensor index (single or sharded safetensors),
 * validation of the tensors against what the config's {@link CheckpointLayout} requires, the
 * tokenizer, the weight-tying decision and a fingerprint. Opening it reads headers only (plus the
 * two matrices when an output copy has to be compared with the embedding, or a tensor stored in two
 * shards); the fingerprint reads the weight files on first use unless its cache knows them; {@link
 * io.olmoppl.model.OlmoModel#load} loads the data.
 *
 * <p>{@link #open} runs the steps in order, each in its own class: {@link SafetensorsIndex} (where
 * the tensors lie; pickles refused), {@link OlmoConfig} (the layout's keys), {@link TokenizerFacts}
 * (the tokenizer's width and OLMo-1's eos fix), {@link TyingResolver}, {@link StrictValidator} and
 * {@link Fingerprint}; every refusal's message is a {@link CheckpointErrors} factory.
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
  private final byte[] configBytes;
  private final byte[] tokenizerBytes;
  private final int tokenizerSize;
  private String fingerprint; // computed on first use: it reads every weight file once

  private Checkpoint(
      Path dir,
      OlmoConfig config,
      Map<String, Located> tensors,
      Map<String, long[]> expected,
      Path tokenizerJson,
      Tying tying,
      byte[] configBytes,
      byte[] tokenizerBytes,
      int tokenizerSize) {
    this.dir = dir;
    this.config = config;
    this.tensors = tensors;
    this.expected = expected;
    this.tokenizerJson = tokenizerJson;
    this.tying = tying;
    this.configBytes = configBytes;
    this.tokenizerBytes = tokenizerBytes;
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
      throw CheckpointErrors.notADirectory(dir);
    }
    Path configPath = dir.resolve("config.json");
    if (!Files.isRegularFile(configPath)) {
      throw CheckpointErrors.noConfig(dir);
    }
    // first: a pickle-only directory is refused before anything else
    Map<String, Located> tensors = SafetensorsIndex.read(dir);
    byte[] configBytes = read(configPath);
    JsonObject json;
    try {
      json =
          JsonParser.parseString(new String(configBytes, StandardCharsets.UTF_8)).getAsJsonObject();
    } catch (RuntimeException e) {
      throw CheckpointErrors.configNotJsonObject(configPath, e);
    }
    OlmoConfig config = OlmoConfig.fromJson(json, configPath.toString());
    Path tokPath = dir.resolve("tokenizer.json");
    if (!Files.isRegularFile(tokPath)) {
      throw CheckpointErrors.noTokenizer(dir);
    }
    byte[] tokBytes = read(tokPath);
    int tokSize;
    try {
      TokenizerFacts tok = TokenizerFacts.read(new String(tokBytes, StandardCharsets.UTF_8));
      tokSize = tok.size();
      config = tok.fixEos(config);
    } catch (IOException | RuntimeException e) {
      throw CheckpointErrors.invalidTokenizer(tokPath, e);
    }
    if (tokSize > config.vocabRows()) {
      throw CheckpointErrors.tokenizerWiderThanEmbedding(tokPath, tokSize, config.vocabRows());
    }

    Map<String, long[]> expected = config.layout().tensors(config);
    Tying tying = TyingResolver.resolve(config, tensors, rule);
    StrictValidator.validate(dir, config, tensors, expected, tying);
    return new Checkpoint(
        dir, config, tensors, expected, tokPath, tying, configBytes, tokBytes, tokSize);
  }

  static byte[] read(Path p) {
    try {
      return Files.readAllBytes(p);
    } catch (IOException e) {
      throw CheckpointErrors.cannotRead(p, e);
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
   * The checkpoint's identity ({@link Fingerprint}): a hash of config.json, tokenizer.json, the
   * tensor headers and the content of every weight file, the latter from {@link
   * FileDigests#defaults()}'s cache when the files are unchanged since they were last hashed.
   *
   * @return 16 hex digits; the first call reads the weight files unless the cache knows them
   * @throws CheckpointException when a weight file cannot be read
   */
  public synchronized String fingerprint() {
    if (fingerprint == null) {
      fingerprint = Fingerprint.of(configBytes, tokenizerBytes, tensors, FileDigests.defaults());
    }
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
