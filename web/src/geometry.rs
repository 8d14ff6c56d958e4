//! Box geometry of the annotator: points and boxes normalised to `[0, 1]` of the image,
//! hit testing, moving and resizing that keep a box inside the image and never let it
//! collapse below a usable size.

/// Smallest width or height a box may have (normalised); smaller drags are clicks.
pub const MIN_SIZE: f32 = 0.01;

/// Half-size of a resize handle, normalised (generous: large click targets).
pub const HANDLE_RADIUS: f32 = 0.02;

/// A point in normalised image coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    /// A point, clamped into the image.
    pub fn new(x: f32, y: f32) -> Self {
        Self {
            x: clamp01(x),
            y: clamp01(y),
        }
    }

    /// The normalised point of a pointer at client pixel `(cx, cy)` over an element whose
    /// client rectangle is `(left, top, width, height)`; `None` for an empty rectangle.
    pub fn from_client(cx: f64, cy: f64, rect: (f64, f64, f64, f64)) -> Option<Self> {
        let (left, top, width, height) = rect;
        if width <= 0.0 || height <= 0.0 {
            return None;
        }
        Some(Self::new(
            ((cx - left) / width) as f32,
            ((cy - top) / height) as f32,
        ))
    }
}

/// Which corner of a box a resize handle sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handle {
    TopLeft,
    TopRight,
    BottomLeft,
    BottomRight,
}

impl Handle {
    pub const ALL: [Handle; 4] = [
        Handle::TopLeft,
        Handle::TopRight,
        Handle::BottomLeft,
        Handle::BottomRight,
    ];

    /// Where this handle sits on `bbox`.
    pub fn position(self, bbox: &[f32; 4]) -> Point {
        let [x1, y1, x2, y2] = *bbox;
        match self {
            Handle::TopLeft => Point { x: x1, y: y1 },
            Handle::TopRight => Point { x: x2, y: y1 },
            Handle::BottomLeft => Point { x: x1, y: y2 },
            Handle::BottomRight => Point { x: x2, y: y2 },
        }
    }
}

fn clamp01(v: f32) -> f32 {
    if v.is_nan() {
        0.0
    } else {
        v.clamp(0.0, 1.0)
    }
}

/// The box spanned by two corners, in `[x1, y1, x2, y2]` order, clamped to the image.
pub fn from_corners(a: Point, b: Point) -> [f32; 4] {
    let (a, b) = (Point::new(a.x, a.y), Point::new(b.x, b.y));
    [a.x.min(b.x), a.y.min(b.y), a.x.max(b.x), a.y.max(b.y)]
}

/// True when a box is big enough to keep (a drag shorter than this was a click).
pub fn is_usable(bbox: &[f32; 4]) -> bool {
    // The tolerance absorbs f32 rounding of a box resized to exactly the minimum.
    bbox[2] - bbox[0] >= MIN_SIZE - 1e-6 && bbox[3] - bbox[1] >= MIN_SIZE - 1e-6
}

/// True when `p` lies inside `bbox` (edges included).
pub fn contains(bbox: &[f32; 4], p: Point) -> bool {
    p.x >= bbox[0] && p.x <= bbox[2] && p.y >= bbox[1] && p.y <= bbox[3]
}

/// The topmost (last drawn, smallest when nested) box under `p`, if any.
pub fn hit_box(boxes: &[[f32; 4]], p: Point) -> Option<usize> {
    boxes
        .iter()
        .enumerate()
        .filter(|(_, b)| contains(b, p))
        .min_by(|(ia, a), (ib, b)| {
            area(a)
                .partial_cmp(&area(b))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(ib.cmp(ia))
        })
        .map(|(i, _)| i)
}

/// The resize handle of `bbox` under `p`, if any.
pub fn hit_handle(bbox: &[f32; 4], p: Point) -> Option<Handle> {
    Handle::ALL.into_iter().find(|h| {
        let c = h.position(bbox);
        (c.x - p.x).abs() <= HANDLE_RADIUS && (c.y - p.y).abs() <= HANDLE_RADIUS
    })
}

fn area(b: &[f32; 4]) -> f32 {
    (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)
}

/// `bbox` shifted by `(dx, dy)`, stopped at the image edges without changing its size.
pub fn translate(bbox: &[f32; 4], dx: f32, dy: f32) -> [f32; 4] {
    let (w, h) = (bbox[2] - bbox[0], bbox[3] - bbox[1]);
    let x1 = (bbox[0] + dx).clamp(0.0, (1.0 - w).max(0.0));
    let y1 = (bbox[1] + dy).clamp(0.0, (1.0 - h).max(0.0));
    [x1, y1, x1 + w, y1 + h]
}

/// `bbox` with the corner `handle` dragged to `p`; the opposite corner stays put and the
/// box keeps at least [`MIN_SIZE`] (dragging past the opposite corner stops there).
pub fn resize(bbox: &[f32; 4], handle: Handle, p: Point) -> [f32; 4] {
    let p = Point::new(p.x, p.y);
    let [mut x1, mut y1, mut x2, mut y2] = *bbox;
    match handle {
        Handle::TopLeft => {
            x1 = p.x.min(x2 - MIN_SIZE);
            y1 = p.y.min(y2 - MIN_SIZE);
        }
        Handle::TopRight => {
            x2 = p.x.max(x1 + MIN_SIZE);
            y1 = p.y.min(y2 - MIN_SIZE);
        }
        Handle::BottomLeft => {
            x1 = p.x.min(x2 - MIN_SIZE);
            y2 = p.y.max(y1 + MIN_SIZE);
        }
        Handle::BottomRight => {
            x2 = p.x.max(x1 + MIN_SIZE);
            y2 = p.y.max(y1 + MIN_SIZE);
        }
    }
    [clamp01(x1), clamp01(y1), clamp01(x2), clamp01(y2)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f32; 4], b: [f32; 4]) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    #[test]
    fn client_pixels_become_normalised_points_clamped_to_the_image() {
        let rect = (100.0, 50.0, 400.0, 200.0);
        assert_eq!(
            Point::from_client(300.0, 150.0, rect),
            Some(Point { x: 0.5, y: 0.5 })
        );
        // Dragging outside the image pins the point to its edge.
        assert_eq!(
            Point::from_client(0.0, 400.0, rect),
            Some(Point { x: 0.0, y: 1.0 })
        );
        assert_eq!(Point::from_client(1.0, 1.0, (0.0, 0.0, 0.0, 10.0)), None);
    }

    #[test]
    fn a_box_drawn_in_any_direction_is_ordered_and_tiny_drags_are_not_boxes() {
        let b = from_corners(Point::new(0.6, 0.7), Point::new(0.2, 0.1));
        assert!(close(b, [0.2, 0.1, 0.6, 0.7]));
        assert!(is_usable(&b));
        let click = from_corners(Point::new(0.5, 0.5), Point::new(0.503, 0.5));
        assert!(!is_usable(&click));
    }

    #[test]
    fn moving_a_box_stops_at_the_edge_and_keeps_its_size() {
        let b = [0.7, 0.7, 0.9, 0.8];
        let moved = translate(&b, 0.5, -0.9);
        assert!(close(moved, [0.8, 0.0, 1.0, 0.1]));
    }

    #[test]
    fn resizing_past_the_opposite_corner_keeps_a_minimum_box() {
        let b = [0.2, 0.2, 0.4, 0.4];
        let r = resize(&b, Handle::BottomRight, Point::new(0.6, 0.5));
        assert!(close(r, [0.2, 0.2, 0.6, 0.5]));
        let r = resize(&b, Handle::TopLeft, Point::new(0.9, 0.9));
        assert!(close(r, [0.4 - MIN_SIZE, 0.4 - MIN_SIZE, 0.4, 0.4]));
        assert!(is_usable(&r));
    }

    #[test]
    fn clicks_pick_the_smallest_box_under_the_pointer_and_handles_at_corners() {
        let boxes = [[0.0, 0.0, 1.0, 1.0], [0.4, 0.4, 0.6, 0.6]];
        assert_eq!(hit_box(&boxes, Point::new(0.5, 0.5)), Some(1));
        assert_eq!(hit_box(&boxes, Point::new(0.1, 0.1)), Some(0));
        assert_eq!(hit_box(&boxes[1..], Point::new(0.1, 0.1)), None);
        assert_eq!(
            hit_handle(&boxes[1], Point::new(0.61, 0.39)),
            Some(Handle::TopRight)
        );
        assert_eq!(hit_handle(&boxes[1], Point::new(0.5, 0.5)), None);
    }
}
