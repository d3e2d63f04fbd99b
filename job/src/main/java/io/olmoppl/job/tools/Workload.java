package io.olmoppl.job.tools;

import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.scoring.ScoringOptions;
import io.olmoppl.tokenizer.OlmoTokenizer;
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
