//! Hardened image decoding, letterbox, the tract ONNX YOLO detector, NMS and image statistics.
