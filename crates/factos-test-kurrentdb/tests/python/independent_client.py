"""The test server driven by an independent client: the Python
`kurrentdbclient`, whose authors run its test suite against a real
KurrentDB. Prints one line per check and `N passed, M failed` last; exits 1
when a check failed.

Usage: python independent_client.py kurrentdb://127.0.0.1:PORT?tls=false
"""

import sys
import uuid

from kurrentdbclient import KurrentDBClient, NewEvent, StreamState
from kurrentdbclient.exceptions import WrongCurrentVersionError

CHECKS = []


def check(function):
    CHECKS.append(function)
    return function


def new(event_type, data=b"{}"):
    return NewEvent(type=event_type, data=data, id=uuid.uuid4())


@check
def appends_return_positions_and_multi_event_appends_report_the_last(client):
    stream = f"py-{uuid.uuid4()}"
    one = client.append_to_stream(stream, events=new("A"), current_version=StreamState.NO_STREAM)
    many = client.append_to_stream(stream, events=[new("B"), new("C")], current_version=0)
    events = client.get_stream(stream)
    assert [e.type for e in events] == ["A", "B", "C"], events
    assert [e.stream_position for e in events] == [0, 1, 2]
    assert events[0].commit_position == one
    assert events[2].commit_position == many, (events[2].commit_position, many)
    assert events[0].commit_position < events[1].commit_position < events[2].commit_position


@check
def a_wrong_expected_version_writes_nothing(client):
    stream = f"py-{uuid.uuid4()}"
    client.append_to_stream(stream, events=new("A"), current_version=StreamState.NO_STREAM)
    for expected in (StreamState.NO_STREAM, 5):
        try:
            client.append_to_stream(stream, events=[new("B"), new("C")], current_version=expected)
        except WrongCurrentVersionError:
            pass
        else:
            raise AssertionError(f"expected {expected} must be refused")
    assert len(client.get_stream(stream)) == 1


@check
def idempotent_resends_return_the_original_positions(client):
    stream = f"py-{uuid.uuid4()}"
    events = [new("A"), new("B")]
    first = client.append_to_stream(stream, events=events, current_version=StreamState.NO_STREAM)
    again = client.append_to_stream(stream, events=events, current_version=StreamState.NO_STREAM)
    assert again == first, (first, again)
    assert len(client.get_stream(stream)) == 2


@check
def reads_of_all_use_the_default_exclusion_filter_and_positions_bound_them(client):
    stream = f"py-{uuid.uuid4()}"
    position = client.append_to_stream(stream, events=[new("Wanted"), new("Other")], current_version=StreamState.NO_STREAM)
    everything = list(client.read_all())
    assert not any(e.type.startswith("$") for e in everything), "system events are excluded by default"
    mine = [e for e in everything if e.stream_name == stream]
    assert [e.type for e in mine] == ["Wanted", "Other"]
    wanted = list(client.read_all(filter_include=["Wanted"]))
    assert all(e.type == "Wanted" for e in wanted) and wanted
    # Forwards from a position includes it; backwards from it excludes it.
    forwards = list(client.read_all(commit_position=position))
    assert forwards[0].commit_position == position, (forwards[0].commit_position, position)
    backwards = list(client.read_all(commit_position=position, backwards=True, limit=1))
    assert backwards[0].commit_position < position


@check
def catch_up_subscriptions_exclude_their_start_and_go_live(client):
    stream = f"py-{uuid.uuid4()}"
    start = client.append_to_stream(stream, events=new("First"), current_version=StreamState.NO_STREAM)
    subscription = client.subscribe_to_all(commit_position=start, timeout=10)
    client.append_to_stream(stream, events=new("Second"), current_version=0)
    try:
        for event in subscription:
            assert event.commit_position > start, "a subscription from P excludes P"
            if event.stream_name == stream:
                assert event.type == "Second", event.type
                break
    finally:
        subscription.stop()


@check
def filtered_subscriptions_send_checkpoints(client):
    stream = f"py-{uuid.uuid4()}"
    client.append_to_stream(stream, events=[new("Noise") for _ in range(12)], current_version=StreamState.NO_STREAM)
    subscription = client.subscribe_to_all(
        filter_include=["NeverWritten"], include_checkpoints=True, window_size=2, checkpoint_interval_multiplier=2, timeout=10
    )
    try:
        for event in subscription:
            if event.type == "Checkpoint" or type(event).__name__ == "Checkpoint":
                assert event.commit_position > 0
                break
            raise AssertionError(f"nothing matches, yet {event.type}")
    finally:
        subscription.stop()


def main():
    client = KurrentDBClient(uri=sys.argv[1])
    passed = failed = 0
    for function in CHECKS:
        try:
            function(client)
        except Exception as error:  # every failure is reported, the run goes on
            failed += 1
            print(f"FAILED {function.__name__}: {type(error).__name__}: {error}")
        else:
            passed += 1
            print(f"ok {function.__name__}")
    client.close()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
