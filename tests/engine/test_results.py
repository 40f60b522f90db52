"""The one record of an image: the service's shape, with the path where the image has one."""

from spikedet.engine.results import Detection, image_record


def test_image_record_has_the_services_shape_with_the_path_when_there_is_one():
    found = [Detection(5, "bus", 0.875, (1.0, 2.5, 30.0, 40.0))]
    record = image_record(810, 1080, found, path="bus.jpg", energy={"snn_mJ": 1.0})
    assert record == {
        "image": {"path": "bus.jpg", "width": 810, "height": 1080},
        "detections": [{"class_id": 5, "name": "bus", "confidence": 0.875,
                        "box": {"x1": 1.0, "y1": 2.5, "x2": 30.0, "y2": 40.0}}],
        "energy": {"snn_mJ": 1.0},
    }
    # an upload has no path and an unmeasured image no energy: the keys are left out, not null
    assert image_record(64, 48, []) == {"image": {"width": 64, "height": 48}, "detections": []}
    assert found[0].describe() == "bus              0.88  [1, 2, 30, 40]"
