# Réponse à une proposition de coopération (cooperation.answered).
# Noms : staff_name, why, link, structure, answer ("acceptée"), answered ("a
# accepté la proposition de coopération", "souhaite discuter de la proposition
# de coopération"), comment, title,
# from_structure, department, category
[subject]
Coopération « {{title}} » : {{answer}}
[text]
Bonjour {{staff_name}},

{{structure}} {{answered}} faite par {{from_structure}} (« {{title}} »).
{{comment}}

Suivre la proposition : {{link}}

{{why}}
[html]
<p>Bonjour {{staff_name}},</p>
<p><strong>{{structure}}</strong> {{answered}} faite par {{from_structure}} (« {{title}} »).</p>
<p>{{comment}}</p>
<p><a href="{{link}}">Suivre la proposition</a></p>
<p style="color:#666;font-size:smaller">{{why}}</p>
