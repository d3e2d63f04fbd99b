package io.olmoppl.checkpoint;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.IOException;
import java.io.StringReader;

/**
 * What the checks need from tokenizer.json, read in one streaming pass: the merges, most of the
 * file, are skipped unparsed (building Gson's tree of the whole file took 0.1 to 0.4 s per open).
 * Also the fix of OLMo-1's known end-of-text bug ({@link #fixEos}), which needs the added tokens.
 *
 * @param maxVocabId the largest id of the model's vocab (-1 when empty)
 * @param addedTokens the {@code added_tokens} array, or null when absent
 */
record TokenizerFacts(int maxVocabId, JsonArray addedTokens) {
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

  /**
   * OLMo-1 configs in the wild say {@code eos_token_id: 0}, the id the training tokenizer calls
   * {@code |||IP_ADDRESS|||}; the documents were terminated with {@code <|endoftext|>} (50279), and
   * allenai's and transformers' OLMo converters write that id.
   *
   * @return {@code config}, or a copy with the tokenizer's {@code <|endoftext|>} id as eos and a
   *     warning saying so
   */
  OlmoConfig fixEos(OlmoConfig config) {
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
}
