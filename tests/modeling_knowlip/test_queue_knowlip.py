import torch
import torch.nn.functional as F

from modeling_knowlip.queue_knowlip import SarKnowlipFeatureQueue


def test_fresh_queue_holds_unit_vectors_and_no_image():
    queue = SarKnowlipFeatureQueue(embed_dim=4, size=5)
    assert torch.allclose(queue.image_feats.norm(dim=1), torch.ones(5))
    assert queue.image_ids.tolist() == [-1] * 5 and queue.ptr.item() == 0
    assert queue.group_ids.tolist() == [-1] * 5
    assert set(queue.state_dict()) == {"image_feats", "text_feats", "image_ids", "group_ids", "ptr"}  # resumable


def test_enqueue_wraps_around_and_overwrites_the_oldest():
    queue = SarKnowlipFeatureQueue(embed_dim=2, size=5)
    def feats(start, count):
        return F.normalize(torch.stack([torch.arange(start, start + count).float(), torch.ones(count)], 1), dim=1)
    queue.enqueue(feats(0, 3), feats(100, 3), torch.tensor([0, 1, 2]))
    assert queue.ptr.item() == 3
    queue.enqueue(feats(3, 4), feats(103, 4), torch.tensor([3, 4, 5, 6]))
    assert queue.ptr.item() == 2
    assert queue.image_ids.tolist() == [5, 6, 2, 3, 4]
    assert torch.allclose(queue.image_feats[0], feats(5, 1)[0])
    assert torch.allclose(queue.text_feats[1], feats(106, 1)[0])


def test_batch_longer_than_the_queue_keeps_its_last_rows():
    queue = SarKnowlipFeatureQueue(embed_dim=2, size=3)
    queue.enqueue(torch.eye(2).repeat(4, 1)[:7], torch.eye(2).repeat(4, 1)[:7], torch.arange(7))
    assert sorted(queue.image_ids.tolist()) == [4, 5, 6]
    queue.enqueue(torch.eye(2)[:1], torch.eye(2)[:1])  # without ids: -1, which matches no image
    assert -1 in queue.image_ids.tolist()
