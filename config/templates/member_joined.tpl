# Nouvelle structure adhérente (member.joined).
# Noms : staff_name, why, link, structure, family, network ("URSCOP Normandie"),
# to_network ("au réseau URSCOP Normandie", "à la Fédération ..."), commune,
# department, description
[subject]
Nouvelle structure adhérente à accueillir : {{structure}} ({{commune}})
[text]
Bonjour {{staff_name}},

{{structure}} ({{family}}, {{commune}}, {{department}}) vient d'adhérer {{to_network}}.
{{description}}

Pensez à lui souhaiter la bienvenue : {{link}}

{{why}}
[html]
<p>Bonjour {{staff_name}},</p>
<p><strong>{{structure}}</strong> ({{family}}, {{commune}}, {{department}}) vient d'adhérer {{to_network}}.</p>
<p>{{description}}</p>
<p><a href="{{link}}">Lui souhaiter la bienvenue</a></p>
<p style="color:#666;font-size:smaller">{{why}}</p>
