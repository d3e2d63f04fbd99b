package io.olmoppl.checkpoint;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * Every refusal of {@link Checkpoint#open}, one factory per error (as Delta kernel's {@code
 * DeltaErrors}): each message says what is wrong, why it matters and how to fix it, and the tests
 * compare the messages word for word. The classes that detect a problem call the factory and throw
 * what it returns.
 */
final class CheckpointErrors {
  private CheckpointErrors() {}

  // the directory and its files

  static CheckpointException notADirectory(Path dir) {
    return new CheckpointException(
        "the model path "
            + dir
            + " is not a directory. Give the Hugging Face checkpoint"
            + " directory (config.json, model.safetensors, tokenizer.json).");
  }

  static CheckpointException noConfig(Path dir) {
    return new CheckpointException(
        dir
            + " has no config.json, so it is not a Hugging Face checkpoint directory. Give the"
            + " model path of the directory that holds config.json, model.safetensors and"
            + " tokenizer.json.");
  }

  static CheckpointException configNotJsonObject(Path config, RuntimeException e) {
    return new CheckpointException(
        config
            + " is not a JSON object ("
            + e.getMessage()
            + "). Restore the checkpoint's"
            + " config.json.");
  }

  static CheckpointException cannotRead(Path p, Exception e) {
    return new CheckpointException("cannot read " + p + ": " + e.getMessage(), e);
  }

  static CheckpointException cannotList(Path dir, Exception e) {
    return new CheckpointException("cannot list " + dir + ": " + e.getMessage(), e);
  }

  // the tokenizer

  static CheckpointException noTokenizer(Path dir) {
    return new CheckpointException(
        dir
            + " has no tokenizer.json. olmo-ppl tokenizes with the checkpoint's own Hugging Face"
            + " tokenizer; copy the model's tokenizer.json into the directory.");
  }

  static CheckpointException invalidTokenizer(Path tokenizer, Exception e) {
    return new CheckpointException(
        tokenizer
            + " is not a valid Hugging Face tokenizer.json ("
            + e.getMessage()
            + "). Copy"
            + " the model's own tokenizer.json into the checkpoint directory.",
        e);
  }

  static CheckpointException tokenizerWiderThanEmbedding(
      Path tokenizer, int tokenizerSize, int vocabRows) {
    return new CheckpointException(
        tokenizer
            + " has token ids up to "
            + (tokenizerSize - 1)
            + " but the model has only "
            + vocabRows
            + " embedding rows, so some tokens have no embedding. Use the"
            + " tokenizer.json that belongs to this model.");
  }

  // the safetensors index

  static CheckpointException notARegularFile(Path p) {
    return new CheckpointException(
        p
            + " is not a regular file (a directory, a device or a link to one). Replace it with"
            + " the checkpoint's real "
            + p.getFileName()
            + ".");
  }

  static CheckpointException indexNotJson(Path index, RuntimeException e) {
    return new CheckpointException(
        index
            + " is not valid JSON ("
            + e.getMessage()
            + "). Re-download the index of the"
            + " sharded checkpoint.",
        e);
  }

  static CheckpointException indexWithoutWeightMap(Path index) {
    return new CheckpointException(
        index + " has no weight_map object. Re-save the sharded checkpoint.");
  }

  static CheckpointException indexEntryNotAFileName(Path index, String tensor, Object value) {
    return new CheckpointException(
        index
            + " maps tensor "
            + tensor
            + " to "
            + value
            + ", not to a file name. Re-download"
            + " the index of the sharded checkpoint.");
  }

  static CheckpointException shardMissing(Path index, String tensor, String shard, Path dir) {
    return new CheckpointException(
        index
            + " maps tensor "
            + tensor
            + " to "
            + shard
            + ", which is not a file in "
            + dir
            + ". Download every shard listed in the index.");
  }

  static CheckpointException shardLacksTensor(Path index, String tensor, String shard) {
    return new CheckpointException(
        index
            + " says tensor "
            + tensor
            + " is in "
            + shard
            + ", but that file does not hold"
            + " it. The shards and the index do not belong together; re-download the"
            + " checkpoint.");
  }

  static CheckpointException shardTensorsNotInIndex(Path index, List<String> unlisted) {
    return new CheckpointException(
        "the shards of "
            + index.getParent()
            + " hold "
            + unlisted.size()
            + " tensor(s) that "
            + index.getFileName()
            + " does not list: "
            + abbreviate(unlisted)
            + ". olmo-ppl loads strictly, as from one model.safetensors, so that no stored weight"
            + " is ignored unseen; the shards and the index do not belong together. Re-download"
            + " the checkpoint (every shard and its index from one save).");
  }

  static CheckpointException shardCopiesDiffer(
      Path index, String tensor, Path named, Path other, String difference) {
    return new CheckpointException(
        "tensor "
            + tensor
            + " is stored twice with different contents: in "
            + named.getFileName()
            + ", where "
            + index.getFileName()
            + " places it, and in "
            + other.getFileName()
            + " ("
            + difference
            + "). olmo-ppl will not pick one copy silently; the shards do not belong to one save."
            + " Re-download the checkpoint.");
  }

  static CheckpointException onlyPickles(Path dir, List<String> pickles) {
    return new CheckpointException(
        dir
            + " holds only pickle weights "
            + pickles
            + ". olmo-ppl never loads pickle files"
            + " (loading one runs arbitrary code). Convert the checkpoint to safetensors first,"
            + " e.g. in Python: AutoModelForCausalLM.from_pretrained(DIR).save_pretrained(OUT,"
            + " safe_serialization=True), and copy tokenizer.json next to it.");
  }

  static CheckpointException noWeights(Path dir) {
    return new CheckpointException(
        dir
            + " has no model.safetensors and no model.safetensors.index.json. Download the"
            + " safetensors weights of the checkpoint into this directory.");
  }

  // the config

  static CheckpointException unknownLayout(String where, String modelType) {
    return new CheckpointException(
        where
            + ": cannot tell the checkpoint layout (model_type \""
            + modelType
            + "\")."
            + " olmo-ppl reads allenai hf_olmo configs (keys d_model, n_layers, n_heads),"
            + " transformers OLMo (model_type \"olmo\" with hidden_size), OLMo-2 (model_type"
            + " \"olmo2\") and Olmo 3 (model_type \"olmo3\"). Use the Hugging Face checkpoint directory of an OLMo model.");
  }

  /** A model of the OLMo family that olmo-ppl recognises and does not compute. */
  static CheckpointException refusedModel(String where, String what) {
    return new CheckpointException(
        where
            + ": "
            + what
            + ". olmo-ppl scores "
            + SUPPORTED
            + ". Use a checkpoint of one of those.");
  }

  /** The model types olmo-ppl scores, for messages. */
  static final String SUPPORTED =
      "OLMo-1 (allenai hf_olmo, transformers \"olmo\"), OLMo-2 (\"olmo2\") and Olmo 3 (\"olmo3\")";

  /** A config that asks for a computation the model does not have. */
  static CheckpointException unsupported(String where, String what) {
    return new CheckpointException(
        where
            + ": "
            + what
            + " is not supported by olmo-ppl, which implements the released"
            + " OLMo-1, OLMo-2 and Olmo 3 architectures (rotary positions, SwiGLU, sequential blocks)."
            + " Use a checkpoint with the released architecture.");
  }

  // tying

  static CheckpointException noEmbedding(OlmoConfig c, String embedding) {
    return new CheckpointException(
        "the checkpoint has no embedding tensor "
            + embedding
            + " (expected shape ["
            + c.vocabRows()
            + ", "
            + c.hiddenSize()
            + "]). The weights are incomplete or not an"
            + " OLMo "
            + c.layout().id()
            + " checkpoint.");
  }

  static CheckpointException untiedWithoutOutput(
      OlmoConfig c, String key, String output, Path embeddingFile) {
    return new CheckpointException(
        "the config says the model is untied ("
            + key
            + " = false), but the checkpoint has no"
            + " output matrix "
            + output
            + " (expected shape ["
            + c.vocabRows()
            + ", "
            + c.hiddenSize()
            + "]) in "
            + embeddingFile
            + ". If the model ties its output to the"
            + " embedding, set "
            + c.tyingKey()
            + ": true in config.json; otherwise the weights"
            + " are incomplete.");
  }

  /**
   * The start of the tying conflict's message and of the warnings that resolve it: a tied config,
   * but a stored output matrix that differs from the embedding.
   */
  static String tiedButDifferent(String key, String output, String embedding, double diff) {
    return "the config says tied ("
        + key
        + " = true), but the checkpoint stores an output matrix "
        + output
        + " that differs from the embedding "
        + embedding
        + " (max abs difference "
        + diff
        + ")";
  }

  static CheckpointException tyingConflict(String conflict, String embedding, String output) {
    return new CheckpointException(
        conflict
            + ". olmo-ppl will not pick one silently. Set tying to config (--tying config"
            + " on the command line; OLMo's rule: logits from "
            + embedding
            + ", ignore "
            + output
            + ") or to checkpoint (--tying checkpoint: use "
            + output
            + " as an untied output"
            + " matrix), or fix the checkpoint.");
  }

  // validation

  static CheckpointException wrongShape(String name, Path file, String stored, long[] expected) {
    return new CheckpointException(
        "tensor "
            + name
            + " in "
            + file
            + " has shape "
            + stored
            + " but the config implies "
            + Arrays.toString(expected)
            + ". The weights do not match config.json; use the"
            + " config that belongs to these weights.");
  }

  static CheckpointException missingTensors(Path dir, String layout, List<String> missing) {
    return new CheckpointException(
        "the checkpoint in "
            + dir
            + " lacks "
            + missing.size()
            + " tensor(s) that its "
            + layout
            + " config requires: "
            + abbreviate(missing)
            + ". The weights are incomplete or"
            + " belong to a different config; re-download the checkpoint or use its own"
            + " config.json.");
  }

  static CheckpointException unexpectedTensors(Path dir, String layout, List<String> unexpected) {
    return new CheckpointException(
        "the checkpoint in "
            + dir
            + " has "
            + unexpected.size()
            + " tensor(s) that its "
            + layout
            + " config does not use: "
            + abbreviate(unexpected)
            + ". olmo-ppl loads strictly so"
            + " that a mismatched config cannot go unnoticed; check that config.json belongs to"
            + " these weights.");
  }

  private static String abbreviate(List<String> names) {
    return names.size() <= 8
        ? names.toString()
        : names.subList(0, 8) + " and " + (names.size() - 8) + " more";
  }
}
