"""PaymentChannel requests as the switch would send them, for the channel tests."""

from payswitch.v1 import channel_pb2, types_pb2


def usd(amount_minor: int) -> types_pb2.Money:
    return types_pb2.Money(amount_minor=amount_minor, currency="USD")


def authorize(reference="auth_1", number="4242424242424242", amount_minor=1000, **fields):
    card = types_pb2.Card(number=number, exp_month=12, exp_year=2030, cvv="123", holder_name="T Tester")
    return channel_pb2.ChannelAuthorizeRequest(reference=reference, merchant_id="m_alpha", amount=usd(amount_minor),
                                               card=card, **fields)


def wallet_authorize(reference, token):
    return channel_pb2.ChannelAuthorizeRequest(reference=reference, merchant_id="m_alpha", amount=usd(500),
                                               wallet=types_pb2.Wallet(provider="applepay", token=token))


def capture(reference, amount_minor=1000, authorization_reference="auth_1"):
    return channel_pb2.ChannelCaptureRequest(reference=reference, authorization_reference=authorization_reference,
                                             amount=usd(amount_minor))


def refund(reference, amount_minor=1000, authorization_reference="auth_1"):
    return channel_pb2.ChannelRefundRequest(reference=reference, authorization_reference=authorization_reference,
                                            amount=usd(amount_minor))


def void(reference, authorization_reference="auth_1"):
    return channel_pb2.ChannelVoidRequest(reference=reference, authorization_reference=authorization_reference)


def inquire(reference):
    return channel_pb2.ChannelInquireRequest(reference=reference)
