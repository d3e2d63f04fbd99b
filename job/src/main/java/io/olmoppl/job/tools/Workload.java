package io.olmoppl.job.tools;

import com.google.gson.JsonElement;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.job.cli.UsageException;
import io.olmoppl.scoring.ScoringOptions;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Texts scored at one window and stride: the window is 512 tokens, or the model's positions when it
 * has fewer; the long document's stride is half the window.
 */
record Workload(List<String> texts, int window, int stride) {
  static final int WINDOW = 512;

  static Workload longDocument(OlmoConfig c, List<String> texts) {
    int w = Math.min(WINDOW, c.maxPositionEmbeddings());
    return new Workload(texts, w, w / 2);
  }

  static Workload shortDocuments(OlmoConfig c, List<String> texts) {
    int w = Math.min(WINDOW, c.maxPositionEmbeddings());
    return new Workload(texts, w, w);
  }

  ScoringOptions options() {
    return ScoringOptions.defaults().withWindow(window, stride);
  }

  /**
   * @return a text of about {@code tokens} tokens: words drawn from the tokenizer's own vocabulary
   *     of words
   */
  static String text(OlmoTokenizer tok, int tokens, SplittableRandom r) {
    String[] words =
        ("the of and to in a is that for it as was with be by on not he this are or his from at which"
                + " but have an they you were her she there been one all we their has would when if so no will can more"
                + " data model token corpus perplexity spark executor window stride byte river mountain history science"
                + " language people government between through because during without under about against")
            .split(" ");
    StringBuilder sb = new StringBuilder();
    int have = 0;
    while (have < tokens) {
      StringBuilder chunk = new StringBuilder();
      for (int w = 0; w < 64; w++) {
        chunk
            .append(sb.length() + chunk.length() == 0 ? "" : " ")
            .append(words[r.nextInt(words.length)]);
        if (r.nextInt(12) == 0) {
          chunk.append('.');
        }
      }
      sb.append(chunk);
      have = tok.encode(sb.toString()).length;
    }
    long[] ids = tok.encode(sb.toString());
    // cut at a word boundary near the target length
    String s = sb.toString();
    while (ids.length > tokens) {
      s = s.substring(0, s.lastIndexOf(' '));
      ids = tok.encode(s);
    }
    return s;
  }

  /**
   * The texts workload's documents, a file of the user's ({@code --texts}): JSON Lines, the string
   * field {@code text} of every line (blank lines skipped), as {@code olmo-ppl score} reads them by
   * default.
   *
   * @throws UsageException when the file cannot be read, a line is not a JSON object with a
   *     non-empty string {@code text}, or it holds no document
   */
  static List<String> readTexts(Path file) {
    List<String> out = new ArrayList<>();
    try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      String line;
      int n = 0;
      while ((line = in.readLine()) != null) {
        n++;
        if (line.isBlank()) {
          continue;
        }
        JsonElement text;
        try {
          JsonElement e = JsonParser.parseString(line);
          text = e.isJsonObject() ? e.getAsJsonObject().get("text") : null;
        } catch (JsonParseException ex) {
          text = null;
        }
        if (text == null || !text.isJsonPrimitive() || !text.getAsJsonPrimitive().isString()) {
          throw new UsageException(
              "--texts "
                  + file
                  + ": line "
                  + n
                  + " is not a JSON object with a string field text. Give JSON Lines, one"
                  + " {\"text\": ...} per document.");
        }
        if (text.getAsString().isEmpty()) {
          throw new UsageException(
              "--texts "
                  + file
                  + ": line "
                  + n
                  + " has an empty text, which has nothing to score. Leave it out.");
        }
        out.add(text.getAsString());
      }
    } catch (IOException e) {
      throw new UsageException(
          "--texts " + file + " cannot be read (" + e.getMessage() + "). Name a file.");
    }
    if (out.isEmpty()) {
      throw new UsageException("--texts " + file + " holds no document.");
    }
    return out;
  }

  /**
   * @return {@code n} documents with a log-normal mix of lengths (median about 70 tokens, mean
   *     about 95)
   */
  static List<String> shortTexts(OlmoTokenizer tok, int n, SplittableRandom r) {
    List<String> out = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      double g =
          Math.sqrt(-2 * Math.log(1 - r.nextDouble())) * Math.cos(2 * Math.PI * r.nextDouble());
      int tokens = (int) Math.max(8, Math.min(480, Math.round(Math.exp(Math.log(70) + 0.75 * g))));
      out.add(text(tok, tokens, r));
    }
    return out;
  }
}
