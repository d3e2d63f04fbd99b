package io.olmoppl.job;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The message {@link Main} prints: the project's own, found inside Spark's exception chain. */
class MainTest {
  @Test
  void projectMessageIsFoundInsideSparkExceptions() {
    var inner = new io.olmoppl.checkpoint.CheckpointException("the real reason");
    var wrapped =
        new org.apache.spark.SparkException("Job aborted due to stage failure: ...\n\tat x", inner);
    assertEquals("the real reason", Main.message(new RuntimeException("outer", wrapped)));
    assertEquals("first line", Main.message(new RuntimeException("first line\nsecond")));
  }
}
