package io.olmoppl.job.report;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * The JSON of {@link ScoreSummary} and of {@code inspect --json}: record components in snake case,
 * nulls written, NaN and infinities as bare JSON5 literals (as Gson wrote them before), indented
 * two spaces with {@code "key": value}.
 */
public final class SummaryJson {
  private static final ObjectWriter WRITER =
      JsonMapper.builder()
          .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
          .disable(JsonWriteFeature.WRITE_NAN_AS_STRINGS)
          .build()
          .writer(
              new DefaultPrettyPrinter(
                      Separators.createDefaultInstance()
                          .withObjectFieldValueSpacing(Separators.Spacing.AFTER))
                  .withArrayIndenter(DefaultIndenter.SYSTEM_LINEFEED_INSTANCE));

  private SummaryJson() {}

  /**
   * @return {@code value} (a summary record, or a map holding records) as indented JSON
   */
  public static String json(Object value) {
    try {
      return WRITER.writeValueAsString(value);
    } catch (JsonProcessingException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Writes {@code summary} to {@code path}, refusing to replace a file. */
  public static void write(FileSystem fs, Path path, ScoreSummary summary) throws IOException {
    try (OutputStream o = fs.create(path, false)) {
      o.write((json(summary) + "\n").getBytes(StandardCharsets.UTF_8));
    }
  }
}
