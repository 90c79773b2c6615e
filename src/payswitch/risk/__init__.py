"""Risk rules checked before a channel is called: the risk file (config), and the engine that applies it.

The per-payment checks run on the hot path (payswitch.hotpath.risk_rules, compiled or pure);
RiskEngine builds them from a RiskConfig and answers each payment with a RiskDecision.
"""
