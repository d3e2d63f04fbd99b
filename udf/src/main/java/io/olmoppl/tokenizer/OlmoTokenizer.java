package io.olmoppl.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.olmoppl.DjlSettings;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The checkpoint's own Hugging Face tokenizer ({@code tokenizer.json}) through DJL's bindings of the Rust library:
 * no special tokens added, no truncation, no padding, offline.
 */
public final class OlmoTokenizer implements AutoCloseable {
  private final HuggingFaceTokenizer tokenizer;

  private OlmoTokenizer(HuggingFaceTokenizer tokenizer) {
    this.tokenizer = tokenizer;
  }

  /** Loads {@code tokenizer.json}. */
  public static OlmoTokenizer load(Path tokenizerJson) {
    DjlSettings.configure();
    try {
      return new OlmoTokenizer(HuggingFaceTokenizer.newInstance(tokenizerJson,
          Map.of("addSpecialTokens", "false", "truncation", "false", "padding", "false")));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot load tokenizer " + tokenizerJson, e);
    }
  }

  /** Loads a tokenizer from the bytes of a {@code tokenizer.json} (broadcast to executors). */
  public static OlmoTokenizer load(byte[] tokenizerJson) {
    DjlSettings.configure();
    try {
      return new OlmoTokenizer(HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(tokenizerJson),
          Map.of("addSpecialTokens", "false", "truncation", "false", "padding", "false")));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot load the broadcast tokenizer", e);
    }
  }

  /** @return token ids of {@code text}, exactly as the HF tokenizers library gives them */
  public long[] encode(String text) {
    if (text.isEmpty()) {
      return new long[0];
    }
    return tokenizer.encode(text, /* addSpecialTokens= */ false, /* withOverflowingTokens= */ false).getIds();
  }

  /** @return token ids of each text */
  public long[][] encodeAll(List<String> texts) {
    long[][] out = new long[texts.size()][];
    for (int i = 0; i < out.length; i++) {
      out[i] = encode(texts.get(i));
    }
    return out;
  }

  @Override
  public void close() {
    tokenizer.close();
  }

}
