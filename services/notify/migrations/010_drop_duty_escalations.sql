-- The backup on duty (备班) is now @-mentioned by sla's first 催办 of the 接单 stage, at half its
-- time on the stage's own clock (the policy's stage_warning_ratio), so working-time stages get it
-- at half their time too. notify's own wall-clock timer is gone; rows still armed would never fire.
DROP TABLE IF EXISTS duty_escalations;
