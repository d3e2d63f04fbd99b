package io.olmoppl.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.olmoppl.runtime.DjlSettings;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The checkpoint's own Hugging Face tokenizer ({@code tokenizer.json}) through DJL's bindings of
 * the Rust library: no special tokens added, no truncation, no padding, offline.
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
      return new OlmoTokenizer(
          HuggingFaceTokenizer.newInstance(
              tokenizerJson,
              Map.of("addSpecialTokens", "false", "truncation", "false", "padding", "false")));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot load tokenizer " + tokenizerJson, e);
    }
  }

  /** Loads a tokenizer from the bytes of a {@code tokenizer.json} (broadcast to executors). */
  public static OlmoTokenizer load(byte[] tokenizerJson) {
    DjlSettings.configure();
    try {
      return new OlmoTokenizer(
          HuggingFaceTokenizer.newInstance(
              new ByteArrayInputStream(tokenizerJson),
              Map.of("addSpecialTokens", "false", "truncation", "false", "padding", "false")));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot load the broadcast tokenizer", e);
    }
  }

  /**
   * @return token ids of {@code text}, exactly as the HF tokenizers library gives them
   */
  public long[] encode(String text) {
    if (text.isEmpty()) {
      return new long[0];
    }
    return tokenizer
        .encode(text, /* addSpecialTokens= */ false, /* withOverflowingTokens= */ false)
        .getIds();
  }

  /**
   * Encodes many texts at once (the Rust library encodes a batch in parallel).
   *
   * @return token ids of each text; null for a null text
   */
  public long[][] encodeAll(List<String> texts) {
    long[][] out = new long[texts.size()][];
    List<String> present = new ArrayList<>();
    for (String t : texts) {
      if (t != null && !t.isEmpty()) {
        present.add(t);
      }
    }
    Encoding[] enc =
        present.isEmpty()
            ? new Encoding[0]
            : tokenizer.batchEncode(
                present.toArray(new String[0]),
                /* addSpecialTokens= */ false,
                /* withOverflowingTokens= */ false);
    int k = 0;
    for (int i = 0; i < out.length; i++) {
      String t = texts.get(i);
      out[i] = t == null ? null : t.isEmpty() ? new long[0] : enc[k++].getIds();
    }
    return out;
  }

  @Override
  public void close() {
    tokenizer.close();
  }
}
