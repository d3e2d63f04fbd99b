package io.olmoppl.spark;

import ai.djl.Device;
import io.olmoppl.model.OlmoModel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Chooses the engine device for {@code --device auto|cpu|gpu}. */
public final class Devices {
  private static final Logger LOG = LoggerFactory.getLogger(Devices.class);

  private Devices() {}

  /** @return the device; {@code gpu} fails loudly when the engine sees none, {@code auto} falls back to CPU */
  public static Device choose(String mode) {
    if (mode.equals("cpu")) {
      return Device.cpu();
    }
    int gpus = OlmoModel.engine().getGpuCount();
    if (gpus > 0) {
      return Device.gpu(0);
    }
    if (mode.equals("gpu")) {
      throw new IllegalStateException("--device gpu was requested but the PyTorch engine sees no CUDA device. Build"
          + " with -Pcuda (pytorch-native-cu124) or point PYTORCH_LIBRARY_PATH at a CUDA libtorch, and run on a GPU"
          + " executor; or use --device cpu.");
    }
    LOG.info("olmo-ppl: no GPU visible to the engine; scoring on CPU");
    return Device.cpu();
  }
}
