package io.olmoppl.job.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.olmoppl.job.cli.UsageException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The bench's {@code --texts}: a user's documents as JSON Lines, refused when unusable. */
class WorkloadTest {
  @TempDir Path tmp;

  private Path file(String content) throws Exception {
    Path p = Files.createTempFile(tmp, "texts", ".jsonl");
    Files.writeString(p, content, StandardCharsets.UTF_8);
    return p;
  }

  @Test
  void readsTheTextOfEveryLine() throws Exception {
    Path p =
        file(
            "{\"text\": \"First paragraph.\", \"id\": 1}\n"
                + "\n"
                + "{\"id\": 2, \"text\": \"Zweiter Absatz \u2014 mit\\nZeilenumbruch.\"}\n");
    assertEquals(
        List.of("First paragraph.", "Zweiter Absatz \u2014 mit\nZeilenumbruch."),
        Workload.readTexts(p));
  }

  @Test
  void refusesWhatItCannotScore() throws Exception {
    for (String bad :
        List.of(
            "not json\n",
            "{\"body\": \"no text field\"}\n",
            "{\"text\": 42}\n",
            "[\"text\"]\n",
            "{\"text\": \"ok\"}\n{\"text\": \"\"}\n",
            "\n\n")) {
      Path p = file(bad);
      UsageException e = assertThrows(UsageException.class, () -> Workload.readTexts(p), bad);
      assertTrue(e.getMessage().startsWith("--texts " + p), e.getMessage());
    }
    UsageException e =
        assertThrows(UsageException.class, () -> Workload.readTexts(tmp.resolve("missing.jsonl")));
    assertTrue(e.getMessage().contains("cannot be read"), e.getMessage());
  }
}
